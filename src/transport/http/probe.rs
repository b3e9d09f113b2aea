//! `saga-account healthcheck`: asks this host's service for `/readyz`, so that a container
//! image needs no curl. Plain HTTP/1.1 over a socket: one request, the status line is all
//! it reads.

use std::{net::IpAddr, net::SocketAddr, time::Duration};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why the probe failed; printed by the command, which then exits 1.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no answer from {0} in time")]
    Timeout(SocketAddr),
    #[error("unreadable answer from {0}")]
    Malformed(SocketAddr),
    #[error("{path} answered {status}")]
    NotReady { path: String, status: u16 },
}

/// Where the probe connects: the listener's own address, or loopback when it listens on
/// every address.
pub fn probe_address(bind: IpAddr, port: u16) -> SocketAddr {
    let ip = match bind {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, port)
}

/// GET `path` at `addr`; `Ok` on a 200.
pub async fn probe(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(), ProbeError> {
    let status = tokio::time::timeout(timeout, status_of(addr, path))
        .await
        .map_err(|_| ProbeError::Timeout(addr))??;
    if status == 200 {
        Ok(())
    } else {
        Err(ProbeError::NotReady {
            path: path.to_owned(),
            status,
        })
    }
}

async fn status_of(addr: SocketAddr, path: &str) -> Result<u16, ProbeError> {
    let connect = |source| ProbeError::Connect { addr, source };
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(connect)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(connect)?;
    // "HTTP/1.1 200 OK": the status is the second word of the first line.
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf).await.map_err(connect)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    std::str::from_utf8(line)
        .ok()
        .filter(|line| line.starts_with("HTTP/1."))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or(ProbeError::Malformed(addr))
}
