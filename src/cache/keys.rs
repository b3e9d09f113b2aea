//! Cache keys and values in the Go service's Redis layout (SPEC section 5), so that Go and
//! Rust replicas can share one Redis during a rolling migration.

use serde::{Deserialize, Serialize};

use crate::domain::{
    Address, CheckResult, Credentials, CustomerId, Email, Name, PersonalInfo, PhoneNumber,
    ShippingInfo,
};

/// The channel on which writes announce the keys they made stale (a JSON array).
pub const INVALIDATION_CHANNEL: &str = "invalidate_cache:account";

/// One cached read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    Personal(CustomerId),
    Shipping(CustomerId),
    Check(CustomerId),
    /// By email address as the database matches it: ASCII letters without case.
    Credentials(String),
}

impl CacheKey {
    pub fn credentials(email: &Email) -> Self {
        CacheKey::Credentials(email.as_str().to_ascii_lowercase())
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
                CacheKey::Credentials(email) => email.len(),
                _ => 0,
            }
    }

    /// The Redis key name, e.g. `cuspersonalinfo:42`.
    pub fn render(&self) -> String {
        match self {
            CacheKey::Personal(id) => format!("cuspersonalinfo:{id}"),
            CacheKey::Shipping(id) => format!("cusshippinginfo:{id}"),
            CacheKey::Check(id) => format!("cuscheck:{id}"),
            CacheKey::Credentials(email) => format!("cuscred:{email}"),
        }
    }
}

/// Every Redis key that can hold credentials of `email`: ours (case-folded) and the one a
/// Go replica writes (the address as typed).
pub fn credential_keys(email: &Email) -> Vec<String> {
    let mut keys = vec![CacheKey::credentials(email).render()];
    let as_typed = format!("cuscred:{}", email.as_str());
    if !keys.contains(&as_typed) {
        keys.push(as_typed);
    }
    keys
}

/// The lock that makes one caller load `key` while the others wait (redsync's layout).
pub fn lock_key(key: &str) -> String {
    format!("mutex:{key}")
}

/// What the in-process tier holds. `None` inside is a cached "does not exist".
#[derive(Debug, Clone)]
pub enum Entry {
    Personal(Option<PersonalInfo>),
    Shipping(Option<ShippingInfo>),
    Check(Option<CheckResult>),
    Credentials(Option<Credentials>),
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

    /// Rough heap footprint, for the in-process cache's memory bound.
    pub fn approximate_size(&self) -> usize {
        let text = match self {
            Entry::Personal(Some(p)) => {
                p.first_name.as_str().len() + p.last_name.as_str().len() + p.email.as_str().len()
            }
            Entry::Shipping(Some(s)) => s.address.as_str().len() + s.phone_number.as_str().len(),
            Entry::Credentials(Some(c)) => c.bcrypted_password.len(),
            _ => 0,
        };
        std::mem::size_of::<Self>() + text
    }
}

/// How a value sits in the in-process tier.
pub trait EntryKind: Sized {
    fn wrap(value: Option<Self>) -> Entry;
    /// `None` when the entry holds another kind of value.
    fn unwrap(entry: Entry) -> Option<Option<Self>>;
}

macro_rules! entry_kind {
    ($($type:ty => $variant:ident),* $(,)?) => {$(
        impl EntryKind for $type {
            fn wrap(value: Option<Self>) -> Entry {
                Entry::$variant(value)
            }
            fn unwrap(entry: Entry) -> Option<Option<Self>> {
                match entry {
                    Entry::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    )*};
}

entry_kind!(PersonalInfo => Personal, ShippingInfo => Shipping, CheckResult => Check, Credentials => Credentials);

/// A value the cache can hold: in memory as an `Entry`, in Redis as the Go JSON shape.
pub trait Cacheable: EntryKind + Send + Sync + 'static {
    /// The Go JSON shape; `None` for values the Go layout cannot express (they stay local).
    fn to_redis(value: &Option<Self>) -> Option<String>;
    /// `None` when the JSON is not of this shape (treated as a miss).
    fn from_redis(json: &str) -> Option<Option<Self>>;
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
    bcrypted_password: String,
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
    fn from_redis(json: &str) -> Option<Option<Self>> {
        let p: RedisPersonal = serde_json::from_str(json).ok()?;
        Some(Some(PersonalInfo {
            first_name: Name::from_stored(p.first_name),
            last_name: Name::from_stored(p.last_name),
            email: Email::from_stored(p.email),
        }))
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
    fn from_redis(json: &str) -> Option<Option<Self>> {
        let s: RedisShipping = serde_json::from_str(json).ok()?;
        Some(Some(ShippingInfo {
            address: Address::from_stored(s.address),
            phone_number: PhoneNumber::from_stored(s.phone_number),
        }))
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
    fn from_redis(json: &str) -> Option<Option<Self>> {
        let c: RedisCheck = serde_json::from_str(json).ok()?;
        Some(c.exist.then_some(CheckResult { active: c.active }))
    }
}

impl Cacheable for Credentials {
    fn to_redis(value: &Option<Self>) -> Option<String> {
        let c = match value {
            Some(c) => RedisCredentials {
                exist: true,
                id: c.id.0,
                active: c.active,
                bcrypted_password: c.bcrypted_password.clone(),
            },
            None => RedisCredentials {
                exist: false,
                id: 0,
                active: false,
                bcrypted_password: String::new(),
            },
        };
        serde_json::to_string(&c).ok()
    }
    fn from_redis(json: &str) -> Option<Option<Self>> {
        let c: RedisCredentials = serde_json::from_str(json).ok()?;
        Some(c.exist.then_some(Credentials {
            id: CustomerId(c.id),
            active: c.active,
            bcrypted_password: c.bcrypted_password,
        }))
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
        assert_eq!(
            CacheKey::credentials(&email).render(),
            "cuscred:ming@example.com"
        );
        assert_eq!(
            credential_keys(&email),
            vec!["cuscred:ming@example.com", "cuscred:Ming@Example.com"]
        );
        assert_eq!(lock_key("cuscheck:42"), "mutex:cuscheck:42");
        for key in [
            CacheKey::Personal(id),
            CacheKey::Shipping(id),
            CacheKey::Check(id),
            CacheKey::credentials(&email),
        ] {
            assert_eq!(CacheKey::parse(&key.render()), Some(key));
        }
        assert_eq!(
            CacheKey::parse("cuscred:Ming@Example.com"),
            Some(CacheKey::credentials(&email))
        );
        assert_eq!(CacheKey::parse("mutex:cuscheck:42"), None);
        assert_eq!(CacheKey::parse("cuscheck:x"), None);
    }

    #[test]
    fn values_have_the_go_json_shapes() {
        let creds = Credentials {
            id: CustomerId(7),
            active: true,
            bcrypted_password: "$2a$10$x".into(),
        };
        assert_eq!(
            Credentials::to_redis(&Some(creds.clone())).unwrap(),
            r#"{"Exist":true,"ID":7,"Active":true,"BcryptedPassword":"$2a$10$x"}"#
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
        let got = Credentials::from_redis(
            r#"{"Exist":true,"ID":9,"Active":false,"BcryptedPassword":"h"}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            Some(Credentials {
                id: CustomerId(9),
                active: false,
                bcrypted_password: "h".into()
            })
        );
        assert_eq!(
            Credentials::from_redis(
                r#"{"Exist":false,"ID":0,"Active":false,"BcryptedPassword":""}"#
            ),
            Some(None)
        );
        assert_eq!(
            CheckResult::from_redis(r#"{"Exist":true,"Active":true}"#),
            Some(Some(CheckResult { active: true }))
        );
        assert!(CheckResult::from_redis("garbage").is_none());
    }
}
