//! The connection's read buffer: lines split in place, bounded by
//! `max_line`, and a size that follows the traffic, so that a thousand quiet
//! agents hold a thousand small buffers rather than their largest bursts.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The read buffer of a connection past its hello: a heartbeat of a few
/// dozen interfaces fits.
const READ_BUFFER: usize = 4 * 1024;

/// The most a read buffer grows to while reads keep filling it: large reads
/// are what make a resend of a deep spool fast.
const BURST_BUFFER: usize = 256 * 1024;

/// The read buffer before the hello: a silent socket costs this much.
pub(super) const HELLO_BUFFER: usize = 1024;

/// A line-splitting read buffer that never holds more than one line of
/// `max_line` bytes plus what followed it in the same read. It starts small
/// and sizes itself to the traffic: it doubles while reads fill it (a burst,
/// a resend), up to [`BURST_BUFFER`], and more only for one long line; once
/// drained after a read that did not fill it, it goes back to
/// [`READ_BUFFER`]. A thousand quiet agents so hold a thousand small buffers,
/// not their largest burst's.
pub(super) struct Lines {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Where the search for the next newline resumes.
    scanned: usize,
    pub(super) max_line: usize,
    /// The room the last read was offered, and whether it filled it.
    offered: usize,
    filled_all: bool,
    /// Dropping the rest of a line passed over with [`Lines::skip`].
    skipping: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct TooLong;

impl Lines {
    /// A buffer of `initial` bytes for lines up to `max_line`.
    pub(super) fn new(initial: usize, max_line: usize) -> Lines {
        Lines {
            buf: vec![0; initial.min(max_line + 2)],
            start: 0,
            end: 0,
            scanned: 0,
            max_line,
            offered: 0,
            filled_all: false,
            skipping: false,
        }
    }

    /// Room to read into: moves the unread part to the front when the tail
    /// is short, grows the buffer when one line fills it or reads keep
    /// filling it, and shrinks it when drained and quiet.
    pub(super) fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
            if !self.filled_all && self.buf.len() > READ_BUFFER {
                self.buf = vec![0; READ_BUFFER.min(self.max_line + 2)];
            }
        }
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        let most = self.max_line + 2;
        if self.end == self.buf.len() {
            // One line fills the buffer: grow, never to nothing to read into.
            let grown = (self.buf.len() * 2).min(most);
            self.buf.resize(grown.max(self.buf.len() + 1), 0);
        } else if self.filled_all && self.buf.len() < BURST_BUFFER.min(most) {
            let grown = (self.buf.len() * 2).min(BURST_BUFFER).min(most);
            self.buf.resize(grown, 0);
        }
        self.offered = self.buf.len() - self.end;
        &mut self.buf[self.end..]
    }

    pub(super) fn filled(&mut self, n: usize) {
        self.end += n;
        self.filled_all = n == self.offered;
    }

    /// The next complete line (without its newline), or None when only
    /// part of one is here; TooLong once a line passes `max_line`.
    pub(super) fn next_line(&mut self) -> Result<Option<&[u8]>, TooLong> {
        if self.skipping {
            match memchr::memchr(b'\n', &self.buf[self.scanned..self.end]) {
                Some(i) => {
                    self.start = self.scanned + i + 1;
                    self.scanned = self.start;
                    self.skipping = false;
                }
                None => {
                    self.start = self.end;
                    self.scanned = self.end;
                    return Ok(None);
                }
            }
        }
        match memchr::memchr(b'\n', &self.buf[self.scanned..self.end]) {
            Some(i) => {
                let newline = self.scanned + i;
                let line_start = self.start;
                if newline - line_start > self.max_line {
                    return Err(TooLong);
                }
                self.start = newline + 1;
                self.scanned = self.start;
                let mut line = &self.buf[line_start..newline];
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                Ok(Some(line))
            }
            None => {
                self.scanned = self.end;
                if self.end - self.start > self.max_line {
                    Err(TooLong)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Bytes of an unfinished line.
    pub(super) fn pending(&self) -> usize {
        self.end - self.start
    }

    /// The first bytes of the line [`Lines::next_line`] found too long.
    pub(super) fn head(&self, n: usize) -> &[u8] {
        &self.buf[self.start..self.end.min(self.start + n)]
    }

    /// Passes over the line [`Lines::next_line`] found too long, what is
    /// buffered of it now and the rest as it arrives, without holding it.
    pub(super) fn skip(&mut self) {
        match memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
            Some(i) => self.start += i + 1,
            None => {
                self.start = self.end;
                self.skipping = true;
            }
        }
        self.scanned = self.start;
    }
}

/// Reads until one whole line is buffered. Ok(None) when the peer closed
/// first.
pub(super) async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    lines: &mut Lines,
) -> Result<Option<Vec<u8>>, LineError> {
    loop {
        if let Some(line) = lines.next_line().map_err(|_| LineError::TooLong)? {
            return Ok(Some(line.to_vec()));
        }
        let n = stream.read(lines.spare()).await.map_err(LineError::Io)?;
        if n == 0 {
            return Ok(None);
        }
        lines.filled(n);
    }
}

#[derive(Debug)]
pub(super) enum LineError {
    TooLong,
    Io(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(max_line: usize, chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, TooLong> {
        let mut lines = Lines::new(HELLO_BUFFER, max_line);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let spare = lines.spare();
                let n = spare.len().min(rest.len());
                spare[..n].copy_from_slice(&rest[..n]);
                lines.filled(n);
                rest = &rest[n..];
                while let Some(line) = lines.next_line()? {
                    out.push(line.to_vec());
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn splits_lines_across_reads() {
        let got = lines_of(1 << 20, &[b"ab", b"c\r\nde", b"f\n\ng\n"]).unwrap();
        assert_eq!(
            got,
            vec![
                b"abc".to_vec(),
                b"def".to_vec(),
                b"".to_vec(),
                b"g".to_vec()
            ]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_refused_before_it_is_buffered() {
        let long = vec![b'x'; 10 << 20];
        assert_eq!(lines_of(1 << 20, &[&long]), Err(TooLong));
        let mut exact = vec![b'y'; 5000];
        exact.push(b'\n');
        assert_eq!(lines_of(5000, &[&exact]).unwrap()[0].len(), 5000);
        exact.insert(0, b'y');
        assert_eq!(lines_of(5000, &[&exact]), Err(TooLong));
    }

    #[test]
    fn a_skipped_line_is_dropped_across_reads_and_the_next_ones_read() {
        for split in [10, 1000, 5000, 9000, 10_001, 10_003] {
            let mut data = vec![b'x'; 10_000];
            data.extend_from_slice(b"\nnext\n");
            let mut lines = Lines::new(HELLO_BUFFER, 4096);
            let mut got = Vec::new();
            let mut skipped = 0;
            for chunk in [&data[..split], &data[split..]] {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let spare = lines.spare();
                    assert!(spare.len() <= 4096 + 2);
                    let n = spare.len().min(rest.len());
                    spare[..n].copy_from_slice(&rest[..n]);
                    lines.filled(n);
                    rest = &rest[n..];
                    loop {
                        match lines.next_line() {
                            Ok(Some(line)) => got.push(line.to_vec()),
                            Ok(None) => break,
                            Err(TooLong) => {
                                assert!(lines.head(3) == b"xxx");
                                lines.skip();
                                skipped += 1;
                            }
                        }
                    }
                }
            }
            assert_eq!(
                (got, skipped),
                (vec![b"next".to_vec()], 1),
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_long_line_grows_the_buffer_and_shorter_ones_follow() {
        let mut data = vec![b'z'; 600_000];
        data.push(b'\n');
        data.extend_from_slice(b"next\n");
        let got = lines_of(1 << 20, &[&data]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], b"next");
    }

    #[test]
    fn a_burst_grows_the_buffer_and_a_quiet_read_shrinks_it() {
        let mut lines = Lines::new(HELLO_BUFFER, 1 << 20);
        let line = [b'e'; 99];
        // Reads that fill whatever room they get, as in a resend.
        for _ in 0..40 {
            let spare = lines.spare();
            let n = spare.len();
            for (i, b) in spare.iter_mut().enumerate() {
                *b = if i % 100 == 99 { b'\n' } else { line[0] };
            }
            lines.filled(n);
            while let Ok(Some(_)) = lines.next_line() {}
        }
        assert_eq!(lines.buf.len(), BURST_BUFFER);
        // A heartbeat on its own: drained, then back to the small buffer.
        let n = {
            let spare = lines.spare();
            spare[..100].copy_from_slice(&[[b'h'; 99].as_slice(), b"\n"].concat());
            100
        };
        lines.filled(n);
        while let Ok(Some(_)) = lines.next_line() {}
        assert_eq!(lines.spare().len(), READ_BUFFER);
    }
}
