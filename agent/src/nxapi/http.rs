//! The HTTP/1.1 framing of NX-API's answers (status line, headers, chunk
//! sizes), read with `httparse`.

/// The most headers an answer may carry; nginx sends about six.
const MAX_HEADERS: usize = 32;

/// What the head of an HTTP answer says about the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) status: u16,
    /// Where the body starts.
    pub(super) body_start: usize,
    pub(super) framing: Framing,
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither, or a length no answer could have: the body ends when the
    /// server closes the connection.
    Close,
}

impl Head {
    /// The full length of the answer, when the head gives it.
    pub(super) fn total(&self) -> Option<usize> {
        match self.framing {
            Framing::Length(length) => self.body_start.checked_add(length),
            Framing::Chunked | Framing::Close => None,
        }
    }
}

/// Reads the status line and headers of `reply` with `httparse`: `None`
/// while they are incomplete, an error naming what is malformed.
pub(super) fn parse_head(reply: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let body_start = match response.parse(reply) {
        Ok(httparse::Status::Complete(start)) => start,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            let line = reply.split(|&b| b == b'\n').next().unwrap_or_default();
            let line = String::from_utf8_lossy(&line[..line.len().min(80)]);
            return Err(format!(
                "a malformed HTTP header ({error}); the answer begins `{}`",
                line.trim_end()
            ));
        }
    };
    let status = response.code.unwrap_or_default();
    let mut framing = Framing::Close;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
        if header.name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Framing::Chunked;
            break;
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            framing = match value.parse::<usize>() {
                Ok(length) if body_start.checked_add(length).is_some() => Framing::Length(length),
                _ => Framing::Close,
            };
        }
    }
    Ok(Some(Head {
        status,
        body_start,
        framing,
    }))
}

/// Joins a `Transfer-Encoding: chunked` body; `None` when it is cut short
/// or a chunk size is not one. Chunk extensions and trailers are ignored.
pub(super) fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    loop {
        let (line, size) = match httparse::parse_chunk_size(body).ok()? {
            httparse::Status::Complete(parsed) => parsed,
            httparse::Status::Partial => return None,
        };
        body = &body[line..];
        if size == 0 {
            return Some(out);
        }
        let size = usize::try_from(size).ok()?;
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

/// The `nxapi_auth` session cookie an answer sets (`nxapi_auth=…`, without
/// its attributes), if its head sets one.
pub(super) fn session_cookie(reply: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(reply).ok()?;
    response.headers.iter().find_map(|header| {
        if !header.name.eq_ignore_ascii_case("set-cookie") {
            return None;
        }
        let value = std::str::from_utf8(header.value).ok()?;
        let cookie = value.split(';').next()?.trim();
        let (name, token) = cookie.split_once('=')?;
        (name == "nxapi_auth" && !token.is_empty()).then(|| cookie.to_string())
    })
}
