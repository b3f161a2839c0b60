//! The web page's files, compiled into the binary so the collector needs no
//! web server, CDN or install step beside it (a switch management network
//! is often offline). Each is gzipped once at start, not per request, and
//! `index.html`'s references to the others carry a hash of their content,
//! so browsers may keep those for a year and still fetch a new build.

use axum::body::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;

/// Every file of `collector/web/` but the screenshots: name, content type,
/// bytes.
pub const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../web/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/app.css"),
    ),
];

/// What the embedded files may weigh together, uncompressed.
pub const BUDGET: usize = 200 * 1024;

/// One file ready to send.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: Bytes,
    pub gzip: Bytes,
    /// A hash of `body`, hex: the `?v=` that makes a reference immutable,
    /// and the ETag.
    pub version: String,
}

#[derive(Debug)]
pub struct Assets {
    files: Vec<Asset>,
}

impl Assets {
    /// Versions and compresses every file.
    pub fn build() -> Assets {
        let mut files: Vec<Asset> = FILES
            .iter()
            .filter(|(name, _, _)| *name != "index.html")
            .map(|(name, content_type, body)| Asset::new(name, content_type, body.to_vec()))
            .collect();
        let (_, html_type, html) = FILES
            .iter()
            .find(|(name, _, _)| *name == "index.html")
            .expect("index.html is embedded");
        let html = versioned(&String::from_utf8_lossy(html), &files);
        files.push(Asset::new("index.html", html_type, html.into_bytes()));
        Assets { files }
    }

    pub fn get(&self, name: &str) -> Option<&Asset> {
        self.files.iter().find(|a| a.name == name)
    }

    pub fn index(&self) -> &Asset {
        self.get("index.html").expect("built with index.html")
    }
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: Vec<u8>) -> Asset {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&body).expect("writing to a Vec");
        let gzip = encoder.finish().expect("writing to a Vec");
        Asset {
            name,
            content_type,
            version: format!("{:016x}", fnv1a(&body)),
            body: Bytes::from(body),
            gzip: Bytes::from(gzip),
        }
    }
}

/// `html` with each `"/assets/NAME"` reference to one of `assets` turned
/// into `"/assets/NAME?v=VERSION"`.
fn versioned(html: &str, assets: &[Asset]) -> String {
    let mut out = html.to_string();
    for asset in assets {
        let plain = format!("\"/assets/{}\"", asset.name);
        let pinned = format!("\"/assets/{}?v={}\"", asset.name, asset.version);
        out = out.replace(&plain, &pinned);
    }
    out
}

/// FNV-1a, 64 bits: a content fingerprint for cache busting, not security.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn the_embedded_files_fit_the_budget() {
        let total: usize = FILES.iter().map(|(_, _, body)| body.len()).sum();
        assert!(
            total <= BUDGET,
            "the web page's files weigh {total} bytes, over the {BUDGET} byte budget"
        );
    }

    #[test]
    fn every_file_is_served_and_its_gzip_inflates_to_it() {
        let assets = Assets::build();
        for (name, content_type, _) in FILES {
            let asset = assets.get(name).unwrap();
            assert_eq!(asset.content_type, *content_type);
            let mut inflated = Vec::new();
            GzDecoder::new(&asset.gzip[..])
                .read_to_end(&mut inflated)
                .unwrap();
            assert_eq!(inflated, asset.body);
        }
    }

    #[test]
    fn the_page_pins_its_assets_to_their_content() {
        let assets = vec![Asset::new("app.js", "text/javascript", b"x".to_vec())];
        let html = r#"<script src="/assets/app.js" defer></script><a href="/assets/app.jsx">"#;
        let pinned = versioned(html, &assets);
        let v = &assets[0].version;
        assert_eq!(
            pinned,
            format!(
                r#"<script src="/assets/app.js?v={v}" defer></script><a href="/assets/app.jsx">"#
            )
        );
        // Another content, another version.
        assert_ne!(Asset::new("a", "t", b"y".to_vec()).version, *v);
    }
}
