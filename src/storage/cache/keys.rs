//! Cache keys and values in the Go service's Redis layout (SPEC section 5), so that Go and
//! Rust replicas can share one Redis during a rolling migration.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{
    Address, CheckResult, Credentials, CustomerId, Email, EmailKey, Name, PersonalInfo,
    PhoneNumber, ShippingInfo,
};

/// The channel on which writes announce the keys they made stale (a JSON array).
pub const INVALIDATION_CHANNEL: &str = "invalidate_cache:account";

/// One cached read, or (`CredentialsAsTyped`) a Redis entry that a write must also drop.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CacheKey {
    Personal(CustomerId),
    Shipping(CustomerId),
    Check(CustomerId),
    /// By the address's key (rule 15.3): one for every spelling the database matches to it.
    Credentials(String),
    /// The key a Go replica writes for an address: as typed. Never held in memory here.
    CredentialsAsTyped(String),
}

/// What a tier knows about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<V> {
    /// A cached value.
    Hit(V),
    /// A cached "does not exist".
    Absent,
    /// Nothing cached (or an entry this reader cannot use).
    Miss,
}

impl CacheKey {
    pub fn credentials(key: &EmailKey) -> Self {
        CacheKey::Credentials(key.as_str().to_owned())
    }

    /// The key a Redis key name stands for; `cuscred:` names in any letter case map to one key.
    pub fn parse(rendered: &str) -> Option<Self> {
        let (kind, rest) = rendered.split_once(':')?;
        let id = || rest.parse().ok().map(CustomerId);
        match kind {
            "cuspersonalinfo" => id().map(CacheKey::Personal),
            "cusshippinginfo" => id().map(CacheKey::Shipping),
            "cuscheck" => id().map(CacheKey::Check),
            "cuscred" => Some(CacheKey::Credentials(rest.to_ascii_lowercase())),
            _ => None,
        }
    }

    pub fn approximate_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + match self {
                CacheKey::Credentials(email) | CacheKey::CredentialsAsTyped(email) => email.len(),
                _ => 0,
            }
    }

    /// The Redis key name, e.g. `cuspersonalinfo:42`.
    pub fn render(&self) -> String {
        match self {
            CacheKey::Personal(id) => format!("cuspersonalinfo:{id}"),
            CacheKey::Shipping(id) => format!("cusshippinginfo:{id}"),
            CacheKey::Check(id) => format!("cuscheck:{id}"),
            CacheKey::Credentials(email) | CacheKey::CredentialsAsTyped(email) => {
                format!("cuscred:{email}")
            }
        }
    }
}

/// Every key that can hold credentials of `email` (whose key is `key`): ours, one for every
/// spelling, and the one a Go replica writes (the address as typed), when they differ.
pub fn credential_keys(key: &EmailKey, email: &Email) -> Vec<CacheKey> {
    let ours = CacheKey::credentials(key);
    let as_typed = CacheKey::CredentialsAsTyped(email.as_str().to_owned());
    if ours.render() == as_typed.render() {
        vec![ours]
    } else {
        vec![ours, as_typed]
    }
}

/// The lock that makes one caller load `key` while the others wait (redsync's layout).
pub fn lock_key(key: &str) -> String {
    format!("mutex:{key}")
}

/// What the in-process tier holds. `None` inside is a cached "does not exist".
#[derive(Debug, Clone)]
///
/// Values sit behind an `Arc`: an entry is then a pointer, so that every slot of the
/// in-process table stays small and a hit copies no text until the caller needs it.
pub enum Entry {
    Personal(Option<Arc<PersonalInfo>>),
    Shipping(Option<Arc<ShippingInfo>>),
    Check(Option<CheckResult>),
    Credentials(Option<Arc<Credentials>>),
}

impl Entry {
    pub fn is_negative(&self) -> bool {
        matches!(
            self,
            Entry::Personal(None)
                | Entry::Shipping(None)
                | Entry::Check(None)
                | Entry::Credentials(None)
        )
    }

    /// Rough footprint (the entry, its shared value and the value's text), for the
    /// in-process cache's memory bound.
    pub fn approximate_size(&self) -> usize {
        // An Arc's counts, and what the allocator keeps per allocation.
        const ARC: usize = 16 + 16;
        const TEXT: usize = 16;
        let value = match self {
            Entry::Personal(Some(p)) => {
                ARC + std::mem::size_of::<PersonalInfo>()
                    + 3 * TEXT
                    + p.first_name.as_str().len()
                    + p.last_name.as_str().len()
                    + p.email.as_str().len()
            }
            Entry::Shipping(Some(s)) => {
                ARC + std::mem::size_of::<ShippingInfo>()
                    + 2 * TEXT
                    + s.address.as_str().len()
                    + s.phone_number.as_str().len()
            }
            Entry::Credentials(Some(c)) => {
                ARC + std::mem::size_of::<Credentials>() + TEXT + c.password_hash.len()
            }
            _ => 0,
        };
        std::mem::size_of::<Self>() + value
    }
}

/// How a value sits in the in-process tier.
pub trait EntryKind: Sized {
    fn into_entry(value: Option<Self>) -> Entry;
    /// `Miss` when the entry holds another kind of value.
    fn from_entry(entry: &Entry) -> Lookup<Self>;
}

macro_rules! entry_kind {
    ($($type:ty => $variant:ident, $wrap:expr, $unwrap:expr;)*) => {$(
        impl EntryKind for $type {
            fn into_entry(value: Option<Self>) -> Entry {
                Entry::$variant(value.map($wrap))
            }
            fn from_entry(entry: &Entry) -> Lookup<Self> {
                match entry {
                    Entry::$variant(Some(v)) => Lookup::Hit($unwrap(v)),
                    Entry::$variant(None) => Lookup::Absent,
                    _ => Lookup::Miss,
                }
            }
        }
    )*};
}

entry_kind! {
    PersonalInfo => Personal, Arc::new, |v: &Arc<PersonalInfo>| PersonalInfo::clone(v);
    ShippingInfo => Shipping, Arc::new, |v: &Arc<ShippingInfo>| ShippingInfo::clone(v);
    CheckResult => Check, |v| v, |v: &CheckResult| *v;
    Credentials => Credentials, Arc::new, |v: &Arc<Credentials>| Credentials::clone(v);
}

/// A value the cache can hold: in memory as an `Entry`, in Redis as the Go JSON shape.
pub trait Cacheable: EntryKind + Send + Sync + 'static {
    /// The Go JSON shape; `None` for values the Go layout cannot express (they stay local).
    fn to_redis(value: &Option<Self>) -> Option<String>;
    /// `Miss` when the JSON is not of this shape.
    fn from_redis(json: &str) -> Lookup<Self>;
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RedisPersonal {
    first_name: String,
    last_name: String,
    email: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RedisShipping {
    address: String,
    phone_number: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RedisCheck {
    exist: bool,
    active: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RedisCredentials {
    exist: bool,
    #[serde(rename = "ID")]
    id: u64,
    active: bool,
    /// Named for the Go service's field; it holds bcrypt or Argon2id hashes.
    #[serde(rename = "BcryptedPassword")]
    password_hash: String,
    /// Not in the Go service's entries: one without it is loaded again from the database,
    /// so that a login never starts a session on credentials of an unknown generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generation: Option<i64>,
}

impl Cacheable for PersonalInfo {
    fn to_redis(value: &Option<Self>) -> Option<String> {
        let p = value.as_ref()?;
        serde_json::to_string(&RedisPersonal {
            first_name: p.first_name.as_str().into(),
            last_name: p.last_name.as_str().into(),
            email: p.email.as_str().into(),
        })
        .ok()
    }
    fn from_redis(json: &str) -> Lookup<Self> {
        let Ok(p) = serde_json::from_str::<RedisPersonal>(json) else {
            return Lookup::Miss;
        };
        Lookup::Hit(PersonalInfo {
            first_name: Name::from_stored(p.first_name),
            last_name: Name::from_stored(p.last_name),
            email: Email::from_stored(p.email),
        })
    }
}

impl Cacheable for ShippingInfo {
    fn to_redis(value: &Option<Self>) -> Option<String> {
        let s = value.as_ref()?;
        serde_json::to_string(&RedisShipping {
            address: s.address.as_str().into(),
            phone_number: s.phone_number.as_str().into(),
        })
        .ok()
    }
    fn from_redis(json: &str) -> Lookup<Self> {
        let Ok(s) = serde_json::from_str::<RedisShipping>(json) else {
            return Lookup::Miss;
        };
        Lookup::Hit(ShippingInfo {
            address: Address::from_stored(s.address),
            phone_number: PhoneNumber::from_stored(s.phone_number),
        })
    }
}

impl Cacheable for CheckResult {
    fn to_redis(value: &Option<Self>) -> Option<String> {
        let check = RedisCheck {
            exist: value.is_some(),
            active: value.is_some_and(|c| c.active),
        };
        serde_json::to_string(&check).ok()
    }
    fn from_redis(json: &str) -> Lookup<Self> {
        match serde_json::from_str::<RedisCheck>(json) {
            Ok(c) if c.exist => Lookup::Hit(CheckResult { active: c.active }),
            Ok(_) => Lookup::Absent,
            Err(_) => Lookup::Miss,
        }
    }
}

impl Cacheable for Credentials {
    fn to_redis(value: &Option<Self>) -> Option<String> {
        let c = match value {
            Some(c) => RedisCredentials {
                exist: true,
                id: c.id.0,
                active: c.active,
                password_hash: c.password_hash.clone(),
                generation: Some(c.generation),
            },
            None => RedisCredentials {
                exist: false,
                id: 0,
                active: false,
                password_hash: String::new(),
                generation: None,
            },
        };
        serde_json::to_string(&c).ok()
    }
    fn from_redis(json: &str) -> Lookup<Self> {
        match serde_json::from_str::<RedisCredentials>(json) {
            Ok(RedisCredentials {
                exist: true,
                generation: None,
                ..
            }) => Lookup::Miss,
            Ok(c) if c.exist => Lookup::Hit(Credentials {
                id: CustomerId(c.id),
                active: c.active,
                password_hash: c.password_hash,
                generation: c.generation.unwrap_or_default(),
            }),
            Ok(_) => Lookup::Absent,
            Err(_) => Lookup::Miss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_render_the_go_names() {
        let id = CustomerId(42);
        assert_eq!(CacheKey::Personal(id).render(), "cuspersonalinfo:42");
        assert_eq!(CacheKey::Shipping(id).render(), "cusshippinginfo:42");
        assert_eq!(CacheKey::Check(id).render(), "cuscheck:42");
        let email = Email::parse("Ming@Example.com").unwrap();
        let key = EmailKey::ascii_folded(&email);
        assert_eq!(
            CacheKey::credentials(&key).render(),
            "cuscred:ming@example.com"
        );
        let rendered: Vec<String> = credential_keys(&key, &email)
            .iter()
            .map(CacheKey::render)
            .collect();
        assert_eq!(
            rendered,
            vec!["cuscred:ming@example.com", "cuscred:Ming@Example.com"]
        );
        let lower = Email::parse("ming@example.com").unwrap();
        assert_eq!(
            credential_keys(&EmailKey::ascii_folded(&lower), &lower).len(),
            1,
            "one key when the address is already lower case"
        );
        assert_eq!(lock_key("cuscheck:42"), "mutex:cuscheck:42");
        for key in [
            CacheKey::Personal(id),
            CacheKey::Shipping(id),
            CacheKey::Check(id),
            CacheKey::credentials(&key),
        ] {
            assert_eq!(CacheKey::parse(&key.render()), Some(key));
        }
        assert_eq!(
            CacheKey::parse("cuscred:Ming@Example.com"),
            Some(CacheKey::credentials(&key))
        );
        assert_eq!(CacheKey::parse("mutex:cuscheck:42"), None);
        assert_eq!(CacheKey::parse("cuscheck:x"), None);
    }

    #[test]
    fn values_have_the_go_json_shapes() {
        let creds = Credentials {
            id: CustomerId(7),
            active: true,
            password_hash: "$2a$10$x".into(),
            generation: 3,
        };
        assert_eq!(
            Credentials::to_redis(&Some(creds.clone())).unwrap(),
            r#"{"Exist":true,"ID":7,"Active":true,"BcryptedPassword":"$2a$10$x","Generation":3}"#
        );
        assert_eq!(
            Credentials::from_redis(&Credentials::to_redis(&Some(creds.clone())).unwrap()),
            Lookup::Hit(creds.clone())
        );
        assert_eq!(
            Credentials::to_redis(&None).unwrap(),
            r#"{"Exist":false,"ID":0,"Active":false,"BcryptedPassword":""}"#
        );
        assert_eq!(
            CheckResult::to_redis(&Some(CheckResult { active: false })).unwrap(),
            r#"{"Exist":true,"Active":false}"#
        );
        let personal = PersonalInfo {
            first_name: Name::parse("A").unwrap(),
            last_name: Name::parse("B").unwrap(),
            email: Email::parse("a@b.co").unwrap(),
        };
        assert_eq!(
            PersonalInfo::to_redis(&Some(personal)).unwrap(),
            r#"{"FirstName":"A","LastName":"B","Email":"a@b.co"}"#
        );
        let shipping = ShippingInfo {
            address: Address::parse("x").unwrap(),
            phone_number: PhoneNumber::parse("1").unwrap(),
        };
        assert_eq!(
            ShippingInfo::to_redis(&Some(shipping)).unwrap(),
            r#"{"Address":"x","PhoneNumber":"1"}"#
        );
        assert_eq!(
            PersonalInfo::to_redis(&None),
            None,
            "no Go shape for a missing profile"
        );
    }

    #[test]
    fn values_written_by_go_are_read() {
        // Go's entries carry no credential generation: loaded again (SPEC rule 15.1).
        let got = Credentials::from_redis(
            r#"{"Exist":true,"ID":9,"Active":false,"BcryptedPassword":"h"}"#,
        );
        assert_eq!(got, Lookup::Miss);
        assert_eq!(
            Credentials::from_redis(
                r#"{"Exist":false,"ID":0,"Active":false,"BcryptedPassword":""}"#
            ),
            Lookup::Absent
        );
        assert_eq!(
            CheckResult::from_redis(r#"{"Exist":true,"Active":true}"#),
            Lookup::Hit(CheckResult { active: true })
        );
        assert_eq!(CheckResult::from_redis("garbage"), Lookup::Miss);
    }
}
