//! Who is calling (SPEC section 10): the peer address, or, when the peer is a trusted proxy
//! (`TRUSTED_PROXIES`), the right-most address of `X-Forwarded-For` that is not one. A
//! forged header from an untrusted peer changes nothing. Logs, sessions and limits use it.

use std::net::IpAddr;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};

use super::state::AppState;
use crate::domain::{ClientInfo, IpNet};

/// The client address of a request, put in its extensions by the observing middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Longest `User-Agent` kept with a session.
const MAX_USER_AGENT_BYTES: usize = 512;

pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Each proxy appends the address it got the request from: walk back from the nearest
    // proxy until an address that is not one of ours.
    let mut nearest = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return nearest;
        };
        for hop in value.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                return nearest;
            };
            if !is_trusted(ip) {
                return ip;
            }
            nearest = ip;
        }
    }
    nearest
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| {
                let mut end = ua.len().min(MAX_USER_AGENT_BYTES);
                while !ua.is_char_boundary(end) {
                    end -= 1;
                }
                ua[..end].to_owned()
            });
        Ok(ClientInfo {
            user_agent,
            ip: parts.extensions.get::<ClientAddr>().map(|c| c.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let trusted = [IpNet::parse("10.0.0.0/8").unwrap()];
        let peer_proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        // From an untrusted peer, a forged header changes nothing.
        assert_eq!(
            client_address(stranger, &headers(&["1.2.3.4"]), &trusted),
            stranger
        );
        // Behind our proxy: the right-most address that is not ours.
        assert_eq!(
            client_address(
                peer_proxy,
                &headers(&["1.2.3.4, 198.51.100.7, 10.0.0.9"]),
                &trusted
            ),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(peer_proxy, &headers(&["1.2.3.4", "198.51.100.7"]), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "several headers read as one list"
        );
        // No header, or only proxies: the nearest proxy.
        assert_eq!(
            client_address(peer_proxy, &headers(&[]), &trusted),
            peer_proxy
        );
        assert_eq!(
            client_address(peer_proxy, &headers(&["10.1.1.1"]), &trusted),
            "10.1.1.1".parse::<IpAddr>().unwrap()
        );
        // Garbage stops the walk at the last address a proxy of ours vouched for.
        assert_eq!(
            client_address(peer_proxy, &headers(&["1.2.3.4, junk"]), &trusted),
            peer_proxy
        );
        // Nothing trusted: the peer, whatever the header says.
        assert_eq!(
            client_address(peer_proxy, &headers(&["1.2.3.4"]), &[]),
            peer_proxy
        );
    }
}
