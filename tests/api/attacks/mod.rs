//! SPEC section 15, attacked the way an attacker would: raw sockets, forged tokens, two
//! replicas racing, the built binary's log read line by line.

mod body_limit;
mod claims;
mod fields;
mod logs;
mod rehash;
mod throttle;
mod tokens;
