//! A minimal HTTP/1.1 keep-alive client: one request at a time per
//! connection, `Content-Length` bodies only (what Surge sends). Small and
//! cheap on purpose: the load generator shares the machine with the server
//! it measures.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head or body accepted, in bytes.
const RESPONSE_BYTES_MAX: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("connection closed by the server")]
    Closed,
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

pub struct Conn {
    stream: TcpStream,
    host: String,
    /// `Authorization: Bearer <key>\r\n`, or empty.
    auth: Vec<u8>,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Conn {
    /// Connects; every request sends `key` as a bearer token, if given.
    pub async fn connect(addr: &str, key: Option<&str>) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            host: addr.to_owned(),
            auth: key
                .map(|k| format!("Authorization: Bearer {k}\r\n").into_bytes())
                .unwrap_or_default(),
            buf: Vec::with_capacity(4096),
            out: Vec::with_capacity(1024),
        })
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, ClientError> {
        self.out.clear();
        self.out.extend_from_slice(method.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(path.as_bytes());
        self.out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.out.extend_from_slice(self.host.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&self.auth);
        if let Some(b) = body {
            self.out
                .extend_from_slice(b"Content-Type: application/json\r\nContent-Length: ");
            self.out.extend_from_slice(b.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\r\n\r\n");
            self.out.extend_from_slice(b);
        } else if matches!(method, "POST" | "PUT" | "PATCH") {
            // Writes are JSON only, even without a body.
            self.out
                .extend_from_slice(b"Content-Type: application/json\r\nContent-Length: 0\r\n\r\n");
        } else {
            self.out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    async fn fill(&mut self) -> Result<(), ClientError> {
        if self.buf.len() > RESPONSE_BYTES_MAX {
            return Err(ClientError::Malformed("response too large"));
        }
        self.buf.reserve(4096);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(ClientError::Closed);
        }
        Ok(())
    }

    async fn read_response(&mut self) -> Result<Response, ClientError> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let (status, len) = parse_head(&self.buf[..head_end])?;
        while self.buf.len() < head_end + len {
            self.fill().await?;
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        Ok(Response { status, body })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Status code and Content-Length of a response head.
fn parse_head(head: &[u8]) -> Result<(u16, usize), ClientError> {
    let text = std::str::from_utf8(head).map_err(|_| ClientError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(ClientError::Malformed("status line"))?;
    let mut len = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            len = value.trim().parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ClientError::Malformed("chunked bodies are not supported"));
        }
    }
    let len = len.ok_or(ClientError::Malformed("no Content-Length"))?;
    if len > RESPONSE_BYTES_MAX {
        return Err(ClientError::Malformed("response too large"));
    }
    Ok((status, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_length_and_refuses_what_it_cannot_read() {
        let head = b"HTTP/1.1 201 Created\r\ncontent-length: 12\r\nx: y\r\n\r\n";
        assert_eq!(parse_head(head).unwrap(), (201, 12));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
