//! The App Store's signed data (StoreKit 2 transactions, App Store Server Notifications V2):
//! JWS in compact form, ES256, whose `x5c` header carries the signing certificate, Apple's
//! intermediate and a root. It is believed only when, as Apple's own libraries check:
//!
//! - the chain has three certificates and verifies up to a trusted root ([`APPLE_ROOT_CA_G3`],
//!   pinned; another only by configuration, as tests need), valid at the payload's `signedDate`
//!   (Apple's rule without online checks: old transactions stay verifiable);
//! - the leaf carries Apple's receipt-signing marker (OID 1.2.840.113635.100.6.11.1) and the
//!   intermediate Apple's WWDR marker (1.2.840.113635.100.6.2.1);
//! - the ES256 signature over `header.payload` verifies with the leaf's key.
//!
//! Chain building and signature checks are rustls-webpki's and aws-lc's (already linked by the
//! TLS stack); only the JWS framing is here. OCSP is not consulted (Apple's libraries make it
//! optional too): a revoked Apple signing key is an Apple-wide incident handled by rotating
//! roots, not per request.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::Timestamp;
use pki_types::{CertificateDer, UnixTime};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, aws_lc_rs as algs};

use crate::StoreError;

/// Apple Root CA - G3 (DER), from <https://www.apple.com/certificateauthority/>; SHA-256
/// 63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179 (checked by a test).
pub const APPLE_ROOT_CA_G3: &[u8] = include_bytes!("../certs/AppleRootCA-G3.cer");

/// Apple's marker extension on the certificate that signs App Store data.
const LEAF_MARKER_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x06, 0x0b, 0x01];
/// Apple's marker extension on its Worldwide Developer Relations intermediate.
const INTERMEDIATE_MARKER_OID: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x06, 0x02, 0x01];

/// Apple's signing chain is ECDSA throughout (P-384 root and intermediate, P-256 leaf).
const CHAIN_ALGORITHMS: &[&dyn pki_types::SignatureVerificationAlgorithm] = &[
    algs::ECDSA_P256_SHA256,
    algs::ECDSA_P256_SHA384,
    algs::ECDSA_P384_SHA256,
    algs::ECDSA_P384_SHA384,
];

/// Which App Store the data must come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum AppleEnvironment {
    Production,
    Sandbox,
    Xcode,
    LocalTesting,
}

impl std::str::FromStr for AppleEnvironment {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "Production" => Ok(AppleEnvironment::Production),
            "Sandbox" => Ok(AppleEnvironment::Sandbox),
            "Xcode" => Ok(AppleEnvironment::Xcode),
            "LocalTesting" => Ok(AppleEnvironment::LocalTesting),
            other => Err(format!(
                "{other:?} is not an App Store environment (Production, Sandbox, Xcode, LocalTesting)"
            )),
        }
    }
}

/// A StoreKit 2 transaction (`JWSTransactionDecodedPayload`), the fields we use.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub transaction_id: String,
    pub original_transaction_id: String,
    pub bundle_id: String,
    pub product_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// ISO 3166-1 alpha-3.
    pub storefront: String,
    pub environment: AppleEnvironment,
    /// Milliseconds since the epoch.
    pub signed_date: i64,
    pub purchase_date: i64,
    #[serde(default = "one")]
    pub quantity: u32,
    /// Set when Apple refunded (revoked) the transaction: it is never credited.
    #[serde(default)]
    pub revocation_date: Option<i64>,
    /// The buyer's account as the app named it to StoreKit (see [`crate::binding`]).
    #[serde(default)]
    pub app_account_token: Option<String>,
}

fn one() -> u32 {
    1
}

/// An App Store Server Notification V2 (`ResponseBodyV2DecodedPayload`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub notification_type: String,
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(rename = "notificationUUID")]
    pub notification_uuid: String,
    /// When Apple signed it (milliseconds): the order of notifications about one transaction.
    #[serde(default)]
    pub signed_date: Option<i64>,
    #[serde(default)]
    pub data: Option<NotificationData>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationData {
    pub bundle_id: String,
    #[serde(default)]
    pub environment: Option<AppleEnvironment>,
    #[serde(default)]
    pub signed_transaction_info: Option<String>,
}

/// Verifies the App Store's signed data for one app.
#[derive(Clone, Debug)]
pub struct AppleVerifier {
    roots: Vec<CertificateDer<'static>>,
    bundle_id: String,
    environment: AppleEnvironment,
}

/// The JWS header fields we read.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    x5c: Vec<String>,
}

/// Only the time the payload was signed (milliseconds), read before the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Signed {
    #[serde(default)]
    signed_date: Option<i64>,
}

impl AppleVerifier {
    /// A verifier trusting Apple Root CA - G3 for `bundle_id` in `environment`.
    pub fn new(bundle_id: impl Into<String>, environment: AppleEnvironment) -> Self {
        AppleVerifier {
            roots: vec![CertificateDer::from(APPLE_ROOT_CA_G3.to_vec())],
            bundle_id: bundle_id.into(),
            environment,
        }
    }

    /// The same, trusting `root` (DER) instead of Apple's: tests and local runs only.
    pub fn with_root(mut self, root: Vec<u8>) -> Self {
        self.roots = vec![CertificateDer::from(root)];
        self
    }

    pub fn bundle_id(&self) -> &str {
        &self.bundle_id
    }

    /// A signed transaction of this app, in this environment, of a consumable.
    pub fn transaction(&self, jws: &str, now: Timestamp) -> Result<Transaction, StoreError> {
        let transaction: Transaction = self.verify(jws, now)?;
        self.same_app(&transaction.bundle_id, Some(transaction.environment))?;
        if transaction.kind != "Consumable" {
            return Err(StoreError::Invalid(format!(
                "a {} transaction, not a consumable",
                transaction.kind
            )));
        }
        Ok(transaction)
    }

    /// A signed notification of this app, its transaction (if it has one) verified too.
    pub fn notification(
        &self,
        signed_payload: &str,
        now: Timestamp,
    ) -> Result<(Notification, Option<Transaction>), StoreError> {
        let notification: Notification = self.verify(signed_payload, now)?;
        let Some(data) = &notification.data else {
            return Ok((notification, None));
        };
        self.same_app(&data.bundle_id, data.environment)?;
        let transaction = match &data.signed_transaction_info {
            Some(jws) => {
                let transaction: Transaction = self.verify(jws, now)?;
                self.same_app(&transaction.bundle_id, Some(transaction.environment))?;
                Some(transaction)
            }
            None => None,
        };
        Ok((notification, transaction))
    }

    fn same_app(
        &self,
        bundle_id: &str,
        environment: Option<AppleEnvironment>,
    ) -> Result<(), StoreError> {
        if bundle_id != self.bundle_id {
            return Err(StoreError::WrongApp(format!(
                "signed for {bundle_id}, this is {}",
                self.bundle_id
            )));
        }
        if environment != Some(self.environment) {
            return Err(StoreError::WrongApp(format!(
                "signed for the {environment:?} environment, this is {:?}",
                self.environment
            )));
        }
        Ok(())
    }

    /// The payload of `jws` once its chain and signature verify, the chain valid when the
    /// payload says it was signed (at `now` if it does not say).
    pub fn verify<T: DeserializeOwned>(&self, jws: &str, now: Timestamp) -> Result<T, StoreError> {
        let invalid = |why: &str| StoreError::Invalid(why.to_owned());
        let mut parts = jws.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("not a compact JWS"));
        };
        let header: Header = serde_json::from_slice(&decode(header)?)
            .map_err(|error| StoreError::Invalid(format!("JWS header: {error}")))?;
        if header.alg != "ES256" {
            return Err(StoreError::Invalid(format!(
                "alg {:?}, not ES256",
                header.alg
            )));
        }
        let payload_bytes = decode(payload)?;
        let signed: Signed = serde_json::from_slice(&payload_bytes)
            .map_err(|error| StoreError::Invalid(format!("JWS payload: {error}")))?;
        let chain = header
            .x5c
            .iter()
            .map(|cert| STANDARD.decode(cert).map(CertificateDer::from))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("x5c is not base64"))?;
        let [leaf, intermediate, _root] = chain.as_slice() else {
            return Err(invalid(
                "x5c must hold the leaf, the intermediate and the root",
            ));
        };
        let signed_ms = signed.signed_date.unwrap_or(now.as_millisecond());
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_millis(
            u64::try_from(signed_ms).map_err(|_| invalid("signedDate before 1970"))?,
        ));
        let leaf_cert = self.verify_chain(leaf, intermediate, at)?;
        let signature = der_signature(&decode(signature)?)?;
        let signed_input = &jws[..header_and_payload_len(jws)];
        leaf_cert
            .verify_signature(algs::ECDSA_P256_SHA256, signed_input.as_bytes(), &signature)
            .map_err(|error| StoreError::Invalid(format!("JWS signature: {error:?}")))?;
        serde_json::from_slice(&payload_bytes)
            .map_err(|error| StoreError::Invalid(format!("payload: {error}")))
    }

    fn verify_chain<'a>(
        &self,
        leaf: &'a CertificateDer<'a>,
        intermediate: &'a CertificateDer<'a>,
        at: UnixTime,
    ) -> Result<EndEntityCert<'a>, StoreError> {
        let anchors = self
            .roots
            .iter()
            .map(|root| webpki::anchor_from_trusted_cert(root).map(|anchor| anchor.to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StoreError::Invalid(format!("trusted root: {error:?}")))?;
        let leaf_cert = EndEntityCert::try_from(leaf)
            .map_err(|error| StoreError::Invalid(format!("leaf certificate: {error:?}")))?;
        leaf_cert
            .verify_for_usage(
                CHAIN_ALGORITHMS,
                &anchors,
                std::slice::from_ref(intermediate),
                at,
                AnyUsage,
                None,
                None,
            )
            .map_err(|error| StoreError::Invalid(format!("certificate chain: {error:?}")))?;
        if !has_extension(leaf, LEAF_MARKER_OID)
            || !has_extension(intermediate, INTERMEDIATE_MARKER_OID)
        {
            return Err(StoreError::Invalid(
                "the chain is not Apple's App Store signing chain (marker extension missing)"
                    .into(),
            ));
        }
        Ok(leaf_cert)
    }
}

/// Apple's signing certificates are not checked for an extended key usage (Apple's libraries
/// do not either): what identifies them is the chain to Apple's root and the marker extensions.
struct AnyUsage;

impl ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, _: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

/// Whether the certificate carries an extension with this OID. The OID's DER (tag, length,
/// value) can only stand in a certificate as an extension's `extnID` (these are Apple's private
/// arcs, used for nothing else), so finding its encoding is finding the extension.
fn has_extension(cert: &CertificateDer<'_>, oid: &[u8]) -> bool {
    let mut encoded = vec![0x06, oid.len() as u8];
    encoded.extend_from_slice(oid);
    cert.as_ref()
        .windows(encoded.len())
        .any(|window| window == encoded)
}

fn decode(part: &str) -> Result<Vec<u8>, StoreError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| StoreError::Invalid("JWS part is not base64url".into()))
}

/// The length of `header.payload`, the signed input.
fn header_and_payload_len(jws: &str) -> usize {
    jws.rfind('.').unwrap_or(0)
}

/// A JWS ES256 signature (r ‖ s, 32 bytes each) in the DER form X.509 verifiers take.
fn der_signature(fixed: &[u8]) -> Result<Vec<u8>, StoreError> {
    if fixed.len() != 64 {
        return Err(StoreError::Invalid("an ES256 signature is 64 bytes".into()));
    }
    let integer = |bytes: &[u8]| {
        let trimmed = &bytes[bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1)..];
        let mut out = vec![0x02];
        if trimmed[0] & 0x80 != 0 {
            out.push(trimmed.len() as u8 + 1);
            out.push(0);
        } else {
            out.push(trimmed.len() as u8);
        }
        out.extend_from_slice(trimmed);
        out
    };
    let (r, s) = (integer(&fixed[..32]), integer(&fixed[32..]));
    let mut der = vec![0x30, (r.len() + s.len()) as u8];
    der.extend(r);
    der.extend(s);
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apple's real chain, as Apple's own library tests it (app-store-server-library-python,
    /// tests/test_x509_verifiction.py): root G3, WWDR G6, the receipt-signing leaf of 2025.
    const REAL_INTERMEDIATE: &str = include_str!("../certs/apple-wwdr-g6.b64");
    const REAL_LEAF: &str = include_str!("../certs/apple-receipt-signing-2025.b64");
    /// A moment when the real leaf is valid (Apple's test's effective date).
    const REAL_LEAF_VALID_AT: u64 = 1_761_962_975;

    fn sha256_hex(bytes: &[u8]) -> String {
        use aws_lc_rs::digest;
        digest::digest(&digest::SHA256, bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn der(b64: &str) -> CertificateDer<'static> {
        CertificateDer::from(STANDARD.decode(b64.trim()).unwrap())
    }

    #[test]
    fn the_pinned_root_is_apple_root_ca_g3() {
        assert_eq!(
            sha256_hex(APPLE_ROOT_CA_G3),
            "63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179"
        );
    }

    #[test]
    fn apples_real_signing_chain_verifies_to_the_pinned_root() {
        let verifier = AppleVerifier::new("com.example", AppleEnvironment::Production);
        let (leaf, intermediate) = (der(REAL_LEAF), der(REAL_INTERMEDIATE));
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(REAL_LEAF_VALID_AT));
        assert!(verifier.verify_chain(&leaf, &intermediate, at).is_ok());
        // Before the leaf was issued, the same chain is refused.
        let early = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000));
        assert!(verifier.verify_chain(&leaf, &intermediate, early).is_err());
        // Without the intermediate's place in the chain, nothing verifies.
        assert!(verifier.verify_chain(&leaf, &leaf, at).is_err());
    }

    #[test]
    fn an_es256_signature_becomes_der() {
        let mut fixed = [0u8; 64];
        fixed[31] = 1; // r = 1
        fixed[32] = 0x80; // s has its high bit set: a leading zero is added
        let der = der_signature(&fixed).unwrap();
        assert_eq!(&der[..5], &[0x30, 3 + 35, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 33, 0x00]);
        assert!(der_signature(&[0; 63]).is_err());
    }
}
