//! The names in an agent's client certificate — the subject's common names
//! and the DNS names of its subjectAltName — which `[[auth.agent_certs]]`
//! binds to agent names.
//!
//! Read here with a small DER walker rather than through `x509-parser`:
//! the certificate has already been verified by rustls (webpki), so only
//! two fields of a well-formed structure are read, and the crate (with
//! `nom`, `asn1-rs`, `der-parser`, `num-bigint`, `time` and
//! `oid-registry`) was 102,464 bytes of the static collector binary
//! (4,967,224 with it, 4,864,760 without, musl release). The tests hold
//! this reader against `x509-parser` on generated certificates.

/// `id-at-commonName` (2.5.4.3).
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// `id-ce-subjectAltName` (2.5.29.17).
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
/// `[0] EXPLICIT` version, `[1]`/`[2]` unique IDs, `[3] EXPLICIT`
/// extensions in TBSCertificate.
const VERSION: u8 = 0xa0;
const ISSUER_UID: u8 = 0x81;
const SUBJECT_UID: u8 = 0x82;
const EXTENSIONS: u8 = 0xa3;
/// `dNSName [2] IMPLICIT IA5String` in GeneralName.
const DNS_NAME: u8 = 0x82;

/// The subject CNs, then the subjectAltName DNS names, of a DER
/// certificate; `None` when it is not one this reader understands (the
/// caller then binds no names, which refuses a bound agent rather than
/// admitting it).
pub fn cert_names(der: &[u8]) -> Option<Vec<String>> {
    let mut cert = Der(der).expect(SEQUENCE)?;
    let mut tbs = cert.expect(SEQUENCE)?;
    if tbs.peek() == Some(VERSION) {
        tbs.next()?;
    }
    tbs.next()?; // serialNumber
    tbs.expect(SEQUENCE)?; // signature
    tbs.expect(SEQUENCE)?; // issuer
    tbs.expect(SEQUENCE)?; // validity
    let subject = tbs.expect(SEQUENCE)?;
    tbs.expect(SEQUENCE)?; // subjectPublicKeyInfo

    let mut names = common_names(subject)?;
    while let Some(tag) = tbs.peek() {
        let (_, body) = tbs.next()?;
        match tag {
            ISSUER_UID | SUBJECT_UID => {}
            EXTENSIONS => names.extend(alt_dns_names(Der(body).expect(SEQUENCE)?)?),
            _ => return None,
        }
    }
    Some(names)
}

/// `Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }`.
fn common_names(mut name: Der<'_>) -> Option<Vec<String>> {
    let mut names = Vec::new();
    while !name.is_empty() {
        let mut rdn = name.expect(SET)?;
        while !rdn.is_empty() {
            let mut attribute = rdn.expect(SEQUENCE)?;
            let oid = attribute.expect(OID)?;
            let (tag, value) = attribute.next()?;
            if oid.0 == OID_COMMON_NAME
                && let Some(text) = string(tag, value)
            {
                names.push(text);
            }
        }
    }
    Some(names)
}

/// `Extensions ::= SEQUENCE OF SEQUENCE { extnID, critical DEFAULT FALSE,
/// extnValue OCTET STRING }`; the SAN's value is `SEQUENCE OF GeneralName`.
fn alt_dns_names(mut extensions: Der<'_>) -> Option<Vec<String>> {
    let mut names = Vec::new();
    while !extensions.is_empty() {
        let mut extension = extensions.expect(SEQUENCE)?;
        let oid = extension.expect(OID)?;
        if extension.peek() == Some(BOOLEAN) {
            extension.next()?;
        }
        let value = extension.expect(OCTET_STRING)?;
        if oid.0 != OID_SUBJECT_ALT_NAME {
            continue;
        }
        let mut general_names = value.expect_whole(SEQUENCE)?;
        while !general_names.is_empty() {
            let (tag, body) = general_names.next()?;
            if tag == DNS_NAME {
                names.push(std::str::from_utf8(body).ok()?.to_string());
            }
        }
    }
    Some(names)
}

/// The string types a CN is written in by the CAs in use; others (BMP,
/// Teletex) give no name.
fn string(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        UTF8_STRING | PRINTABLE_STRING | IA5_STRING => {
            std::str::from_utf8(value).ok().map(str::to_string)
        }
        _ => None,
    }
}

/// The unread rest of one DER value's contents.
#[derive(Clone, Copy)]
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next TLV's tag and contents. Only single-byte tags and definite
    /// lengths up to four bytes, which is all DER certificates use.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes.iter().fold(0usize, |n, &b| n << 8 | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (body, after) = rest.split_at(len);
        self.0 = after;
        Some((tag, body))
    }

    /// The next TLV's contents, which must carry `tag`.
    fn expect(&mut self, tag: u8) -> Option<Der<'a>> {
        match self.next()? {
            (t, body) if t == tag => Some(Der(body)),
            _ => None,
        }
    }

    /// The contents of the one TLV that makes up all of this value.
    fn expect_whole(mut self, tag: u8) -> Option<Der<'a>> {
        let inner = self.expect(tag)?;
        self.is_empty().then_some(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;

    /// What `x509-parser` reads from the same certificate.
    fn reference(der: &[u8]) -> Vec<String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        let mut names: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(str::to_string)
            .collect();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(dns) = name {
                    names.push(dns.to_string());
                }
            }
        }
        names
    }

    fn generate(cn: Option<&str>, sans: &[&str], ip_too: bool) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "hopwatch");
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        if ip_too {
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress("192.0.2.7".parse().unwrap()));
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn names_agree_with_x509_parser() {
        let cases: &[(Option<&str>, &[&str], bool)] = &[
            (Some("leaf1"), &["leaf1.fabric.example", "leaf1"], false),
            (None, &["spine-2.example"], true),
            (Some("only-a-cn"), &[], false),
            (None, &[], false),
            (
                Some("ünïcode-cn"),
                &["a.example", "b.example", "c.example"],
                true,
            ),
        ];
        for &(cn, sans, ip) in cases {
            let der = generate(cn, sans, ip);
            let ours = cert_names(&der).expect("a generated certificate reads");
            assert_eq!(ours, reference(&der), "cn {cn:?} sans {sans:?}");
            let mut expected: Vec<String> = cn.iter().map(|s| s.to_string()).collect();
            expected.extend(sans.iter().map(|s| s.to_string()));
            assert_eq!(ours, expected);
        }
    }

    #[test]
    fn a_cut_or_garbled_certificate_gives_no_names_and_no_panic() {
        let der = generate(Some("leaf1"), &["leaf1.example"], true);
        for end in 0..der.len() {
            assert_eq!(cert_names(&der[..end]), None, "cut at {end}");
        }
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0xff;
            // Any answer but a panic; most flips are refused.
            let _ = cert_names(&bad);
        }
        assert_eq!(cert_names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(cert_names(&[0x3f, 0x00]), None);
    }
}
