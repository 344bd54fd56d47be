//! Our verifier reads what Apple's own library reads: notifications Apple's tests sign with
//! Apple's test root (see apple/README.md).

use coins_stores::StoreError;
use coins_stores::apple::{AppleEnvironment, AppleVerifier};

const TEST_ROOT: &[u8] = include_bytes!("apple/testCA.der");
const TEST_NOTIFICATION: &str = include_str!("apple/testNotification");
const WRONG_BUNDLE: &str = include_str!("apple/wrongBundleId");

fn verifier(bundle: &str, environment: AppleEnvironment) -> AppleVerifier {
    AppleVerifier::new(bundle, environment).with_root(TEST_ROOT.to_vec())
}

#[test]
fn apples_test_notification_verifies_under_apples_test_root() {
    let (notification, transaction) = verifier("com.example", AppleEnvironment::Sandbox)
        .notification(TEST_NOTIFICATION.trim(), jiff::Timestamp::now())
        .unwrap();
    assert_eq!(notification.notification_type, "TEST");
    assert_eq!(
        notification.notification_uuid,
        "9ad56bd2-0bc6-42e0-af24-fd996d87a1e6"
    );
    assert!(transaction.is_none());
}

#[test]
fn the_same_notification_is_refused_under_apples_real_root_or_for_another_app() {
    let real_root = AppleVerifier::new("com.example", AppleEnvironment::Sandbox);
    assert!(matches!(
        real_root.notification(TEST_NOTIFICATION.trim(), jiff::Timestamp::now()),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        verifier("com.example", AppleEnvironment::Production)
            .notification(TEST_NOTIFICATION.trim(), jiff::Timestamp::now()),
        Err(StoreError::WrongApp(_))
    ));
    assert!(matches!(
        verifier("com.examplex", AppleEnvironment::Sandbox)
            .notification(WRONG_BUNDLE.trim(), jiff::Timestamp::now()),
        Err(StoreError::WrongApp(_))
    ));
}
