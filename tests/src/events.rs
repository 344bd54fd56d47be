//! API Gateway HTTP API (payload 2.0) events from the fixtures in `tests/fixtures/apigw/`,
//! adjusted per test: the caller's claims, the body, headers. What a function receives on AWS.

use serde_json::Value;

use crate::binaries::fixture;
use crate::identity::User;

/// An event being prepared.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiGatewayEvent(pub Value);

impl ApiGatewayEvent {
    /// `tests/fixtures/apigw/<name>`.
    #[track_caller]
    pub fn load(name: &str) -> ApiGatewayEvent {
        let path = fixture(&format!("apigw/{name}"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()));
        ApiGatewayEvent(
            serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("fixture {}: {error}", path.display())),
        )
    }

    /// The authorizer's claims are `user`'s (as the JWT authorizer passes them: strings).
    pub fn user(mut self, user: &User) -> ApiGatewayEvent {
        let claims = &mut self.0["requestContext"]["authorizer"]["jwt"]["claims"];
        claims["sub"] = user.sub.clone().into();
        claims["birthdate"] = user.birthdate.clone().into();
        claims["billing_country"] = user.billing_country.clone().into();
        claims["zoneinfo"] = user.zoneinfo.clone().into();
        claims["scope"] = user.scope.clone().into();
        match &user.billing_region {
            Some(region) => claims["billing_region"] = region.clone().into(),
            None => {
                if let Some(map) = claims.as_object_mut() {
                    map.remove("billing_region");
                }
            }
        }
        self
    }

    /// Replaces the body (and its `content-length`).
    pub fn body(mut self, body: &str) -> ApiGatewayEvent {
        self.0["body"] = body.into();
        self.0["isBase64Encoded"] = false.into();
        self.header("content-length", &body.len().to_string())
    }

    /// Sets a header (API Gateway lower-cases their names).
    pub fn header(mut self, name: &str, value: &str) -> ApiGatewayEvent {
        self.0["headers"][name.to_ascii_lowercase()] = value.into();
        self
    }

    pub fn to_json(&self) -> String {
        self.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_is_a_payload_2_event_whose_route_matches_its_path() {
        for name in [
            "get-gift-catalog.json",
            "get-packages.json",
            "get-wallet.json",
            "post-creator.json",
            "post-gift.json",
            "post-payment-webhook.json",
            "post-purchase.json",
            "post-quote.json",
        ] {
            let event = ApiGatewayEvent::load(name).0;
            assert_eq!(event["version"], "2.0", "{name}");
            let route = event["routeKey"].as_str().unwrap();
            let (method, path) = route.split_once(' ').unwrap();
            assert_eq!(event["requestContext"]["http"]["method"], method, "{name}");
            assert_eq!(event["rawPath"], path, "{name}");
            assert_eq!(event["requestContext"]["routeKey"], route, "{name}");
            let has_authorizer = event["requestContext"].get("authorizer").is_some();
            assert_eq!(
                has_authorizer,
                name != "post-payment-webhook.json",
                "{name}"
            );
        }
    }

    #[test]
    fn the_caller_and_body_are_replaced() {
        let user = User::new("zoe")
            .in_country("US", "America/Chicago")
            .in_region("US-AL");
        let event = ApiGatewayEvent::load("post-quote.json")
            .user(&user)
            .body(r#"{"channel":"web","coins":100}"#);
        let claims = &event.0["requestContext"]["authorizer"]["jwt"]["claims"];
        assert_eq!(claims["sub"], user.sub.as_str());
        assert_eq!(claims["billing_region"], "US-AL");
        assert_eq!(event.0["body"], r#"{"channel":"web","coins":100}"#);
        assert_eq!(event.0["headers"]["content-length"], "29");
    }
}
