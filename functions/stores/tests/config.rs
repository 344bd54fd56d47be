//! The stores function's cold start (#18): without a push service account it refuses to start
//! (the push audience is public, so any Google account could otherwise sign a push), and test
//! purchases are not credited unless the deployment says so.

use coins_runtime::SdkConfig;

/// The settings of a deployment: `overrides` over a push account and nothing else.
fn settings(overrides: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    move |name: &str| {
        overrides
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .or_else(|| {
                (name == "GOOGLE_PUSH_SERVICE_ACCOUNT")
                    .then(|| "pubsub-push@coins.iam.gserviceaccount.com".to_owned())
            })
    }
}

fn no_aws() -> SdkConfig {
    SdkConfig::builder().build()
}

#[tokio::test]
async fn no_push_service_account_or_an_empty_one_refuses_to_start() {
    for empty in ["", "   "] {
        let refused = stores::load_with(
            &no_aws(),
            &settings(&[("GOOGLE_PUSH_SERVICE_ACCOUNT", empty)]),
        )
        .await;
        let error = refused.expect_err("an empty push account must not start");
        assert!(
            error.to_string().contains("GOOGLE_PUSH_SERVICE_ACCOUNT"),
            "{error}"
        );
    }
    let unset = stores::load_with(&no_aws(), &|_: &str| None).await;
    assert!(unset.is_err());
}

#[tokio::test]
async fn license_testers_are_off_unless_the_deployment_allows_them() {
    let default = stores::load_with(&no_aws(), &settings(&[])).await.unwrap();
    assert!(!default.google.allow_license_testers);
    let allowed = stores::load_with(
        &no_aws(),
        &settings(&[("GOOGLE_ALLOW_LICENSE_TESTERS", "true")]),
    )
    .await
    .unwrap();
    assert!(allowed.google.allow_license_testers);
    let nonsense = settings(&[("GOOGLE_ALLOW_LICENSE_TESTERS", "yes")]);
    assert!(stores::load_with(&no_aws(), &nonsense).await.is_err());
}
