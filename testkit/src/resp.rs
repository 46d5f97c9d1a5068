//! Just enough RESP (the Redis serialization protocol, version 2) to send a command
//! and read its reply over a plain TCP connection: the harness asks Redis how it is
//! (`PING`, `INFO`, `CLUSTER INFO`) without a client crate.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR …`
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$n` then n bytes; `$-1` is `Bulk(None)`.
    Bulk(Option<Vec<u8>>),
    /// `*n` then n replies; `*-1` is `Array(None)`.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// In an array of names and values (`SENTINEL MASTER`, `CONFIG GET`), the value
    /// after `name`, as text.
    pub fn field(&self, name: &str) -> Option<String> {
        let Reply::Array(Some(items)) = self else {
            return None;
        };
        items
            .chunks(2)
            .find(|pair| pair[0].text().as_deref() == Some(name))
            .and_then(|pair| pair.get(1)?.text())
    }

    /// The reply as text: a status, an error's message, an integer, a bulk string.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) | Reply::Error(s) => Some(s.clone()),
            Reply::Integer(i) => Some(i.to_string()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Bulk(None) | Reply::Array(_) => None,
        }
    }
}

/// Sends `args` as one command to `127.0.0.1:port` on a new connection and reads the
/// reply. A Redis error reply is `Ok(Reply::Error(_))`; only I/O and protocol faults
/// are `Err`. On a Redis that asks for `password` (`--requirepass`), `AUTH` first, on the same
/// connection; a refused `AUTH` is its `Ok(Reply::Error)`.
pub fn command_as(port: u16, password: Option<&str>, args: &[&str]) -> io::Result<Reply> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(&stream);
    if let Some(password) = password {
        (&stream).write_all(&encode(&["AUTH", password]))?;
        let auth = read_reply(&mut reader)?;
        if matches!(auth, Reply::Error(_)) {
            return Ok(auth);
        }
    }
    (&stream).write_all(&encode(args))?;
    read_reply(&mut reader)
}

/// `args` as a RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn protocol(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a reply",
        ));
    }
    let line = line
        .strip_suffix("\r\n")
        .ok_or_else(|| protocol(format!("a reply line without CRLF: {line:?}")))?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| protocol(format!("not a number: {line:?}")))
    };
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Integer(number()?),
        "$" => match usize::try_from(number()?) {
            Err(_) => Reply::Bulk(None),
            Ok(n) => {
                let mut buf = vec![0; n + 2];
                r.read_exact(&mut buf)?;
                if !buf.ends_with(b"\r\n") {
                    return Err(protocol("a bulk string without CRLF"));
                }
                buf.truncate(n);
                Reply::Bulk(Some(buf))
            }
        },
        "*" => match usize::try_from(number()?) {
            Err(_) => Reply::Array(None),
            Ok(n) => Reply::Array(Some(
                (0..n).map(|_| read_reply(r)).collect::<io::Result<_>>()?,
            )),
        },
        _ => return Err(protocol(format!("not a RESP reply: {line:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<Reply> {
        read_reply(&mut BufReader::new(bytes))
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            encode(&["INFO", "memory"]),
            b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n"
        );
    }

    #[test]
    fn every_reply_kind_parses() {
        assert_eq!(parse(b"+PONG\r\n").unwrap(), Reply::Status("PONG".into()));
        assert_eq!(
            parse(b"-ERR no\r\n").unwrap(),
            Reply::Error("ERR no".into())
        );
        assert_eq!(parse(b":-3\r\n").unwrap(), Reply::Integer(-3));
        assert_eq!(
            parse(b"$5\r\na\r\nbc\r\n").unwrap(),
            Reply::Bulk(Some(b"a\r\nbc".to_vec()))
        );
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(
            parse(b"*2\r\n:1\r\n$1\r\nx\r\n").unwrap(),
            Reply::Array(Some(vec![
                Reply::Integer(1),
                Reply::Bulk(Some(b"x".to_vec()))
            ]))
        );
        assert_eq!(parse(b"*-1\r\n").unwrap(), Reply::Array(None));
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert!(parse(b"").is_err());
        assert!(parse(b"+PONG\n").is_err());
        assert!(parse(b":x\r\n").is_err());
        assert!(parse(b"$3\r\nabcd\r\n").is_err());
        assert!(parse(b"?\r\n").is_err());
    }
}
