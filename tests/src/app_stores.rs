//! The app stores for the end-to-end tests: one set of fakes per test process (the test kit's:
//! an App Store signing chain, Google's push key, the Play service account, the stores' HTTP
//! APIs on 127.0.0.1), and the local server's settings pointing at them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use coins_testkit::stores::{
    AppleSigner, FakeStores, GoogleKey, Leaf, PLAY_ACCOUNT, PUSH_ACCOUNT, app_store_api_key,
};

/// The fakes and the files the local server reads them from.
pub struct StoreFakes {
    pub apple: AppleSigner,
    pub google: GoogleKey,
    pub play_account: GoogleKey,
    pub stores: FakeStores,
    root_file: PathBuf,
    play_account_file: PathBuf,
    apple_key_file: PathBuf,
}

/// The process's fakes, started on first use.
pub fn store_fakes() -> &'static StoreFakes {
    static FAKES: OnceLock<StoreFakes> = OnceLock::new();
    FAKES.get_or_init(|| {
        let apple = AppleSigner::new(Leaf::Good);
        let google = GoogleKey::new("google-push-1");
        let play_account = GoogleKey::new("play-api-1");
        let (apple_key, apple_public) = app_store_api_key();
        let stores = FakeStores::start(&google, &play_account, &apple_public);
        let dir = std::env::temp_dir().join(format!("e2e-stores-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("writing a fake's file");
            path
        };
        StoreFakes {
            root_file: write("apple-root.pem", &apple.root_pem()),
            play_account_file: write(
                "play-service-account.json",
                &play_account.service_account_json(PLAY_ACCOUNT),
            ),
            apple_key_file: write("apple-iap-key.p8", &apple_key),
            apple,
            google,
            play_account,
            stores,
        }
    })
}

impl StoreFakes {
    /// The stores' settings of an in-process server.
    pub fn setting(&self, name: &str) -> Option<String> {
        let path = |path: &PathBuf| path.display().to_string();
        let read = |path: &PathBuf| std::fs::read_to_string(path).ok();
        match name {
            "APPLE_ROOT_CA_FILE" => Some(path(&self.root_file)),
            "APPLE_ENVIRONMENT" => Some("Sandbox".into()),
            "APPLE_KEY_ID" => Some("E2EKEY0001".into()),
            "APPLE_ISSUER_ID" => Some("e2e-issuer".into()),
            "APPLE_PRIVATE_KEY" => read(&self.apple_key_file),
            "APP_STORE_API_BASE" | "GOOGLE_PLAY_API_BASE" => Some(self.stores.base_url.clone()),
            "GOOGLE_OAUTH_TOKEN_URL" => Some(self.stores.token_url()),
            "GOOGLE_JWKS_URL" => Some(self.stores.jwks_url()),
            "GOOGLE_SERVICE_ACCOUNT" => read(&self.play_account_file),
            "GOOGLE_PUSH_SERVICE_ACCOUNT" => Some(PUSH_ACCOUNT.into()),
            // As the local server binary's default.
            "GOOGLE_ALLOW_LICENSE_TESTERS" => Some("true".into()),
            _ => None,
        }
    }

    /// The same for the `local-server` binary: its flags and environment.
    pub fn configure(&self, command: &mut Command) {
        command
            .args(["--apple-root-ca", &self.root_file.display().to_string()])
            .args(["--app-store-api-base", &self.stores.base_url])
            .args(["--google-play-api-base", &self.stores.base_url])
            .args(["--google-oauth-token-url", &self.stores.token_url()])
            .args(["--google-jwks-url", &self.stores.jwks_url()])
            .env("APPLE_KEY_ID", "E2EKEY0001")
            .env("APPLE_ISSUER_ID", "e2e-issuer")
            .env("APPLE_PRIVATE_KEY_FILE", &self.apple_key_file)
            .env("GOOGLE_SERVICE_ACCOUNT_FILE", &self.play_account_file)
            .env("GOOGLE_PUSH_SERVICE_ACCOUNT", PUSH_ACCOUNT);
    }
}
