//! API Gateway HTTP API (payload 2.0) events for the Lambda runtime tests and the benchmark:
//! `coins-testkit`'s fixtures, with a caller's claims put in as the JWT authorizer passes them.

pub use coins_testkit::Event;

use crate::identity::User;

/// Puts a caller into an event.
pub trait Caller {
    /// The authorizer's claims are `user`'s (strings, as the JWT authorizer passes them).
    fn caller(self, user: &User) -> Event;
}

impl Caller for Event {
    fn caller(self, user: &User) -> Event {
        self.claim("sub", Some(&user.sub))
            .claim("birthdate", Some(&user.birthdate))
            .claim("billing_country", Some(&user.billing_country))
            .claim("zoneinfo", Some(&user.zoneinfo))
            .claim("scope", Some(&user.scope))
            .claim("billing_region", user.billing_region.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_and_body_are_replaced() {
        let user = User::new("zoe")
            .in_country("US", "America/Chicago")
            .in_region("US-AL");
        let event = Event::load("post-quote")
            .caller(&user)
            .raw_body(r#"{"channel":"web","coins":100}"#);
        let claims = &event.0["requestContext"]["authorizer"]["jwt"]["claims"];
        assert_eq!(claims["sub"], user.sub.as_str());
        assert_eq!(claims["billing_region"], "US-AL");
        assert_eq!(event.0["body"], r#"{"channel":"web","coins":100}"#);
        assert_eq!(event.0["headers"]["content-length"], "29");
    }
}
