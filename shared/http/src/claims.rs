//! The caller's verified identity: the JWT claims API Gateway's authorizer passed on, typed.
//!
//! On AWS the HTTP API's JWT authorizer verifies the token and puts its claims (all as strings)
//! in `requestContext.authorizer.jwt.claims`; the local server does the same after verifying its
//! dev token. Either way the functions read them here, and nothing else: a missing or malformed
//! claim is a 401, never a default, because pricing, age and refund windows all hang on them.

use std::collections::HashMap;

use coins_ids::UserId;
use coins_rules::age::check_age;
use coins_rules::{AgeOk, BillingCountry, BillingLocation, BillingRegion, Zone};
use jiff::Timestamp;
use jiff::civil::Date;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::error::{ApiError, Problem};

/// The scope that opens the admin routes.
pub const ADMIN_SCOPE: &str = "coins:admin";

/// The verified caller, as the rules need it.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    /// `sub`: the user id; the wallet is always this user's.
    pub user_id: UserId,
    /// `birthdate`: the OIDC `YYYY-MM-DD` date of birth.
    pub birthdate: Date,
    /// `billing_country`: ISO 3166-1 alpha-2 (`JP`). The pricing country.
    pub billing_country: BillingCountry,
    /// `billing_region`: ISO 3166-2 subdivision of the billing country (`US-AL`), if given.
    pub billing_region: Option<BillingRegion>,
    /// `zoneinfo`: the IANA zone the user's local days (refund windows, limits, age) are counted in.
    pub zone: Zone,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
}

/// Why the claims could not be read: each becomes a 401 `unauthenticated`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the request carries no verified identity")]
    NoIdentity,
    #[error("the identity has no `{0}` claim")]
    Missing(&'static str),
    #[error("the identity's `{claim}` claim is invalid: {reason}")]
    Invalid { claim: &'static str, reason: String },
}

impl From<ClaimsError> for ApiError {
    fn from(error: ClaimsError) -> Self {
        ApiError::new(Problem::Unauthenticated, error)
    }
}

impl Claims {
    /// Reads the claims API Gateway (or the local server) attached to the request.
    pub fn from_request(req: &Request) -> Result<Claims, ClaimsError> {
        let Some(RequestContext::ApiGatewayV2(context)) = req.request_context_ref() else {
            return Err(ClaimsError::NoIdentity);
        };
        let claims = context
            .authorizer
            .as_ref()
            .and_then(|authorizer| authorizer.jwt.as_ref())
            .map(|jwt| &jwt.claims)
            .filter(|claims| !claims.is_empty())
            .ok_or(ClaimsError::NoIdentity)?;
        Claims::from_map(claims)
    }

    /// Parses the string claims map of the JWT authorizer.
    pub fn from_map(claims: &HashMap<String, String>) -> Result<Claims, ClaimsError> {
        let get = |name: &'static str| {
            claims
                .get(name)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
                .ok_or(ClaimsError::Missing(name))
        };
        let invalid = |claim: &'static str, reason: String| ClaimsError::Invalid { claim, reason };

        let user_id =
            UserId::new(get("sub")?).map_err(|error| invalid("sub", error.to_string()))?;
        let birthdate = parse_birthdate(get("birthdate")?)
            .ok_or_else(|| invalid("birthdate", "expected a YYYY-MM-DD date".into()))?;
        let billing_country: BillingCountry = get("billing_country")?.parse().map_err(|_| {
            invalid(
                "billing_country",
                "expected an ISO 3166-1 alpha-2 code such as JP".into(),
            )
        })?;
        let billing_region = match claims.get("billing_region").map(|v| v.trim()) {
            // Where rules differ by region (age, sales tax), the region decides them.
            None | Some("") if billing_country.region_required() => {
                return Err(ClaimsError::Missing("billing_region"));
            }
            None | Some("") => None,
            Some(region) => match region.parse::<BillingRegion>() {
                Ok(region) if region.country() == billing_country => Some(region),
                _ => {
                    return Err(invalid(
                        "billing_region",
                        format!(
                            "expected an ISO 3166-2 code within {billing_country}, such as {billing_country}-01"
                        ),
                    ));
                }
            },
        };
        let zone =
            Zone::get(get("zoneinfo")?).map_err(|error| invalid("zoneinfo", error.to_string()))?;
        let scopes = claims
            .get("scope")
            .map(|scope| scope.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Claims {
            user_id,
            birthdate,
            billing_country,
            billing_region,
            zone,
            scopes,
        })
    }

    /// Where the caller is billed: their country, and their region where it has one.
    pub fn location(&self) -> BillingLocation {
        BillingLocation::new(self.billing_country, self.billing_region)
            .expect("the region was checked to be within the country")
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Admin routes: 403 `forbidden` without the `coins:admin` scope.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.has_scope(ADMIN_SCOPE) {
            Ok(())
        } else {
            Err(ApiError::new(
                Problem::Forbidden,
                format!("this route needs the `{ADMIN_SCOPE}` scope"),
            ))
        }
    }

    /// The age gate (buying, sending, receiving): 403 `age_restricted` under the minimum age of
    /// the caller's billing jurisdiction, counted on their local date at `now`.
    pub fn check_age(&self, now: Timestamp) -> Result<AgeOk, ApiError> {
        Ok(check_age(
            self.birthdate,
            self.billing_country,
            self.billing_region,
            now,
            self.zone.tz(),
        )?)
    }
}

/// Strictly `YYYY-MM-DD`: jiff alone would also take other ISO 8601 shapes, and OIDC's
/// `0000-MM-DD` (year withheld) leaves the age unknown, which must not pass the age gate.
fn parse_birthdate(value: &str) -> Option<Date> {
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok || value.starts_with("0000") {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokyo_adult() -> HashMap<String, String> {
        [
            ("sub", "user-123"),
            ("birthdate", "1990-04-01"),
            ("billing_country", "JP"),
            ("zoneinfo", "Asia/Tokyo"),
            ("scope", "openid coins:admin"),
            ("exp", "1900000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn with(
        mut claims: HashMap<String, String>,
        key: &str,
        value: &str,
    ) -> HashMap<String, String> {
        claims.insert(key.to_owned(), value.to_owned());
        claims
    }

    #[test]
    fn complete_claims_are_typed() {
        let claims = Claims::from_map(&tokyo_adult()).unwrap();
        assert_eq!(claims.user_id.as_str(), "user-123");
        assert_eq!(claims.birthdate, jiff::civil::date(1990, 4, 1));
        assert_eq!(claims.billing_country.as_str(), "JP");
        assert_eq!(claims.billing_region, None);
        assert_eq!(claims.zone.name(), "Asia/Tokyo");
        assert!(claims.has_scope(ADMIN_SCOPE));
        assert!(claims.require_admin().is_ok());
    }

    #[test]
    fn each_required_claim_missing_is_named() {
        for name in ["sub", "birthdate", "billing_country", "zoneinfo"] {
            let mut claims = tokyo_adult();
            claims.remove(name);
            assert_eq!(Claims::from_map(&claims), Err(ClaimsError::Missing(name)));
            let blank = with(tokyo_adult(), name, "  ");
            assert_eq!(Claims::from_map(&blank), Err(ClaimsError::Missing(name)));
        }
    }

    #[test]
    fn a_malformed_birthdate_is_rejected() {
        for bad in [
            "1990-4-1",
            "19900401",
            "1990-02-30",
            "0000-04-01",
            "1990-04-01T00:00",
        ] {
            let claims = with(tokyo_adult(), "birthdate", bad);
            assert!(
                matches!(
                    Claims::from_map(&claims),
                    Err(ClaimsError::Invalid {
                        claim: "birthdate",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_country_must_be_alpha2_and_the_region_within_it() {
        assert!(Claims::from_map(&with(tokyo_adult(), "billing_country", "JPN")).is_err());
        assert!(Claims::from_map(&with(tokyo_adult(), "billing_country", "J1")).is_err());
        let us = with(
            with(tokyo_adult(), "billing_country", "US"),
            "zoneinfo",
            "America/Chicago",
        );
        assert_eq!(
            Claims::from_map(&us),
            Err(ClaimsError::Missing("billing_region")),
            "rules differ by state: the region is required"
        );
        let alabama = Claims::from_map(&with(us.clone(), "billing_region", "US-AL")).unwrap();
        assert_eq!(alabama.billing_region.unwrap().as_str(), "US-AL");
        assert!(Claims::from_map(&with(us.clone(), "billing_region", "CA-QC")).is_err());
        assert!(Claims::from_map(&with(us, "billing_region", "US-ALAB")).is_err());
    }

    #[test]
    fn a_sub_that_cannot_be_a_user_id_is_rejected() {
        for bad in ["a#b", "has space", &"x".repeat(129)] {
            assert!(
                matches!(
                    Claims::from_map(&with(tokyo_adult(), "sub", bad)),
                    Err(ClaimsError::Invalid { claim: "sub", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_age_gate_counts_on_the_local_date_of_the_jurisdiction() {
        // Born 2008-03-02: 18 in Japan from local midnight of 2026-03-02 (15:00 UTC the day before).
        let teen = with(tokyo_adult(), "birthdate", "2008-03-02");
        let claims = Claims::from_map(&teen).unwrap();
        assert!(
            claims
                .check_age("2026-03-01T14:59:59Z".parse().unwrap())
                .is_err()
        );
        assert!(
            claims
                .check_age("2026-03-01T15:00:00Z".parse().unwrap())
                .is_ok()
        );
        let korea = with(
            with(teen, "billing_country", "KR"),
            "zoneinfo",
            "Asia/Seoul",
        );
        let error = Claims::from_map(&korea)
            .unwrap()
            .check_age("2026-03-02T00:00:00Z".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            (error.code(), error.status().as_u16()),
            ("age_restricted", 403)
        );
    }

    #[test]
    fn an_unknown_zone_is_rejected() {
        let claims = with(tokyo_adult(), "zoneinfo", "Mars/Olympus_Mons");
        assert!(matches!(
            Claims::from_map(&claims),
            Err(ClaimsError::Invalid {
                claim: "zoneinfo",
                ..
            })
        ));
    }

    #[test]
    fn without_the_admin_scope_admin_routes_are_forbidden() {
        let claims = Claims::from_map(&with(tokyo_adult(), "scope", "openid coins:read")).unwrap();
        let error = claims.require_admin().unwrap_err();
        assert_eq!(error.code(), "forbidden");
        let mut no_scope = tokyo_adult();
        no_scope.remove("scope");
        assert!(Claims::from_map(&no_scope).unwrap().scopes.is_empty());
    }

    #[test]
    fn a_request_without_an_authorizer_is_unauthenticated() {
        let req = Request::default();
        assert_eq!(Claims::from_request(&req), Err(ClaimsError::NoIdentity));
        assert_eq!(
            ApiError::from(ClaimsError::NoIdentity).status().as_u16(),
            401
        );
    }
}
