//! TLS and certificates: TLS 1.2/1.3 only with AEAD suites, the HTTPS
//! certificate replaced through CertificateService (new handshakes present it,
//! a restart keeps it, bad input is refused), GenerateCSR and the install of
//! the signed certificate, the privilege the actions need, and client
//! certificates (mTLS) mapped to accounts, optional and required.

use std::path::Path;
use std::process::Command;

use hyper::StatusCode;
use redfin_tests::{handshake, test_node, TempDir, TestBmc, ADMIN, ADMIN_PASSWORD};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

const REPLACE: &str = "/redfish/v1/CertificateService/Actions/CertificateService.ReplaceCertificate";
const GENERATE_CSR: &str = "/redfish/v1/CertificateService/Actions/CertificateService.GenerateCSR";
const HTTPS_CERTS: &str = "/redfish/v1/Managers/BMC/NetworkProtocol/HTTPS/Certificates";
const HTTPS_CERT: &str = "/redfish/v1/Managers/BMC/NetworkProtocol/HTTPS/Certificates/1";
const CLIENT_CAS: &str = "/redfish/v1/AccountService/MultiFactorAuth/ClientCertificate/Certificates";

fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

async fn presented(bmc: &TestBmc) -> Vec<u8> {
    handshake(bmc.addr, rustls::ALL_VERSIONS)
        .await
        .expect("handshake")
        .0
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM certificate")
        .to_vec()
}

/// A certificate authority made with rcgen.
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        Ca { params, key, pem }
    }

    /// A leaf certificate and its key (PEM), for `cn`, signed by this CA.
    fn issue(&self, cn: &str, names: &[&str], client: bool) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}

/// A self-signed server certificate and key (PEM).
fn self_signed(cn: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![cn.to_owned()]).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Redfin Test");
    (
        params.self_signed(&key).expect("certificate").pem(),
        key.serialize_pem(),
    )
}

fn replace_body(pem: &str) -> Value {
    json!({
        "CertificateString": pem,
        "CertificateType": "PEM",
        "CertificateUri": {"@odata.id": HTTPS_CERT},
    })
}

fn openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn start(dir: &Path) -> TestBmc {
    let (uri, _) = test_node(dir, 1);
    TestBmc::start(&dir.join("state"), &uri).await
}

#[tokio::test(flavor = "multi_thread")]
async fn only_tls12_and_tls13_with_aead_suites() {
    let dir = TempDir::new("tls-versions");
    let bmc = start(dir.path()).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let (_, negotiated, suite) = handshake(bmc.addr, &[version]).await.expect("handshake");
        assert_eq!(negotiated, version.version);
        let name = format!("{suite:?}");
        assert!(
            name.contains("_GCM_") || name.contains("CHACHA20_POLY1305"),
            "{name} is not an AEAD suite"
        );
    }
    // rustls cannot speak TLS 1.0/1.1 or CBC suites: ask OpenSSL's client.
    if openssl() {
        let port = bmc.addr.port().to_string();
        let s_client = |args: &[&str]| {
            let out = Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &format!("127.0.0.1:{port}"),
                    "-servername",
                    "localhost",
                ])
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .expect("openssl s_client");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success() && !text.contains("Cipher is (NONE)"), text)
        };
        for old in ["-tls1", "-tls1_1"] {
            let (ok, text) = s_client(&[old, "-cipher", "DEFAULT@SECLEVEL=0"]);
            assert!(!ok, "{old} was accepted:\n{text}");
            // Refused by bmcd (an alert), not by the client's own settings.
            assert!(text.contains("alert"), "{old}:\n{text}");
        }
        let (ok, text) = s_client(&[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA",
        ]);
        assert!(!ok && text.contains("alert"), "a CBC suite was accepted:\n{text}");
        let (ok, text) = s_client(&["-tls1_2"]);
        assert!(ok, "TLS 1.2 refused:\n{text}");
    } else {
        eprintln!("openssl not installed: TLS 1.0/1.1 refusal checked by rustls's design only");
    }
    bmc.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_certificate_is_presented_at_once_and_after_a_restart() {
    let dir = TempDir::new("cert-replace");
    let (uri, _) = test_node(dir.path(), 1);
    let state = dir.path().join("state");
    let bmc = TestBmc::start(&state, &uri).await;
    let admin = bmc.admin();

    let service = admin.get("/redfish/v1/CertificateService").await;
    assert_eq!(service.status, StatusCode::OK);
    assert_eq!(
        service.json["Actions"]["#CertificateService.ReplaceCertificate"]["target"],
        REPLACE
    );
    let protocol = admin.get("/redfish/v1/Managers/BMC/NetworkProtocol").await;
    assert_eq!(protocol.json["HTTPS"]["Certificates"]["@odata.id"], HTTPS_CERTS);
    let locations = admin
        .get("/redfish/v1/CertificateService/CertificateLocations")
        .await;
    assert_eq!(
        locations.json["Links"]["Certificates"][0]["@odata.id"],
        HTTPS_CERT
    );

    let before = presented(&bmc).await;
    let shown = admin.get(HTTPS_CERT).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json["Fingerprint"], fingerprint(&before));
    assert_eq!(shown.json["Subject"]["CommonName"], "Redfin BMC");

    let (cert, key) = self_signed("bmc.example");
    let r = admin.post(REPLACE, replace_body(&format!("{cert}{key}"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let new = der_of(&cert);
    assert_eq!(
        presented(&bmc).await,
        new,
        "a new handshake presents the new certificate"
    );
    let shown = admin.get(HTTPS_CERT).await;
    assert_eq!(shown.json["Fingerprint"], fingerprint(&new));
    assert_eq!(shown.json["FingerprintHashAlgorithm"], "TPM_ALG_SHA256");
    assert_eq!(shown.json["Subject"]["CommonName"], "bmc.example");
    assert_eq!(shown.json["Subject"]["Organization"], "Redfin Test");
    assert_eq!(shown.json["Subject"]["AlternativeNames"], json!(["bmc.example"]));
    assert_eq!(shown.json["Issuer"]["CommonName"], "bmc.example");
    assert!(shown.json["ValidNotAfter"]
        .as_str()
        .is_some_and(|t| t.ends_with("+00:00")));
    let pem = shown.json["CertificateString"].as_str().unwrap_or("");
    assert!(pem.contains("BEGIN CERTIFICATE") && !pem.contains("PRIVATE KEY"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.join("tls/https.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    bmc.stop().await;
    let bmc = TestBmc::start(&state, &uri).await;
    assert_eq!(
        presented(&bmc).await,
        new,
        "the restart keeps the replaced certificate"
    );
    bmc.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_certificates_are_refused_with_extended_info() {
    let dir = TempDir::new("cert-bad");
    let bmc = start(dir.path()).await;
    let admin = bmc.admin();
    let before = presented(&bmc).await;
    let (cert, _) = self_signed("one.example");
    let (_, other_key) = self_signed("two.example");
    let expired = {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["old.example".to_owned()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        format!(
            "{}{}",
            params.self_signed(&key).expect("certificate").pem(),
            key.serialize_pem()
        )
    };
    let cases = [
        (
            "garbage",
            replace_body("not a certificate"),
            "ActionParameterValueFormatError",
        ),
        (
            "broken DER",
            replace_body("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n"),
            "ActionParameterValueFormatError",
        ),
        (
            "mismatched key",
            replace_body(&format!("{cert}{other_key}")),
            "ActionParameterValueError",
        ),
        (
            "no key and no CSR",
            replace_body(&cert),
            "ActionParameterValueError",
        ),
        ("expired", replace_body(&expired), "ActionParameterValueError"),
        (
            "not the HTTPS certificate",
            json!({"CertificateString": cert, "CertificateType": "PEM",
                   "CertificateUri": {"@odata.id": "/redfish/v1/AccountService/MultiFactorAuth/ClientCertificate/Certificates/1"}}),
            "ActionParameterValueError",
        ),
        (
            "PKCS7",
            json!({"CertificateString": cert, "CertificateType": "PKCS7", "CertificateUri": {"@odata.id": HTTPS_CERT}}),
            "ActionParameterValueNotInList",
        ),
        (
            "no type",
            json!({"CertificateString": cert, "CertificateUri": {"@odata.id": HTTPS_CERT}}),
            "ActionParameterMissing",
        ),
    ];
    for (what, body, message) in cases {
        let r = admin.post(REPLACE, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.json);
        assert!(r.message_id().ends_with(message), "{what}: {}", r.json);
        let info = &r.json["error"]["@Message.ExtendedInfo"][0];
        assert!(
            info["Resolution"].as_str().is_some_and(|t| !t.is_empty()),
            "{what}"
        );
        assert!(
            !r.body.windows(11).any(|w| w == b"PRIVATE KEY"),
            "{what}: the key is echoed"
        );
    }
    assert_eq!(presented(&bmc).await, before, "nothing was installed");
    bmc.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_signed_for_a_generated_csr_is_installed_without_its_key() {
    let dir = TempDir::new("cert-csr");
    let bmc = start(dir.path()).await;
    let admin = bmc.admin();
    // The action names its parameters in an ActionInfo.
    let service = admin.get("/redfish/v1/CertificateService").await.json;
    let info = service["Actions"]["#CertificateService.GenerateCSR"]["@Redfish.ActionInfo"]
        .as_str()
        .expect("ActionInfo")
        .to_owned();
    let info = admin.get(&info).await.json;
    let params = info["Parameters"].as_array().expect("parameters");
    let required: Vec<&str> = params
        .iter()
        .filter(|p| p["Required"] == true)
        .filter_map(|p| p["Name"].as_str())
        .collect();
    assert_eq!(required, vec!["CertificateCollection", "CommonName"], "{info}");
    let r = admin
        .post(
            GENERATE_CSR,
            json!({
                "CommonName": "bmc.example",
                "AlternativeNames": ["bmc.example", "127.0.0.1"],
                "Organization": "Redfin",
                "OrganizationalUnit": "Lab",
                "City": "Berlin",
                "State": "Berlin",
                "Country": "DE",
                "Email": "ops@example.com",
                "KeyPairAlgorithm": "TPM_ALG_ECDSA",
                "KeyCurveId": "TPM_ECC_NIST_P256",
                "CertificateCollection": {"@odata.id": HTTPS_CERTS},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["CertificateCollection"]["@odata.id"], HTTPS_CERTS);
    let csr = r.json["CSRString"].as_str().expect("CSRString").to_owned();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));

    // Refused parameters.
    for (body, message) in [
        (
            json!({"CommonName": "x", "CertificateCollection": {"@odata.id": HTTPS_CERTS}, "KeyBitLength": 2048}),
            "ActionParameterValueNotInList",
        ),
        (
            json!({"CommonName": "x", "CertificateCollection": {"@odata.id": "/redfish/v1/Systems"}}),
            "ActionParameterValueError",
        ),
        (
            json!({"CommonName": "x", "CertificateCollection": {"@odata.id": HTTPS_CERTS}, "Country": "Germany"}),
            "ActionParameterValueFormatError",
        ),
        (
            json!({"CertificateCollection": {"@odata.id": HTTPS_CERTS}}),
            "ActionParameterMissing",
        ),
        (
            json!({"CommonName": "x", "CertificateCollection": {"@odata.id": HTTPS_CERTS}, "ChallengePassword": "p"}),
            "ActionParameterNotSupported",
        ),
    ] {
        let e = admin.post(GENERATE_CSR, body.clone()).await;
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}: {}", e.json);
        assert!(e.message_id().ends_with(message), "{body}: {}", e.json);
    }

    if !openssl() {
        eprintln!("openssl not installed: the CSR is not signed and installed");
        bmc.stop().await;
        return;
    }
    let work = dir.path().join("ca");
    std::fs::create_dir_all(&work).expect("dir");
    std::fs::write(work.join("req.pem"), &csr).expect("write");
    let verify = Command::new("openssl")
        .args(["req", "-verify", "-noout", "-text", "-in"])
        .arg(work.join("req.pem"))
        .output()
        .expect("openssl req");
    let text = String::from_utf8_lossy(&verify.stdout).to_string() + &String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{text}");
    assert!(
        text.contains("CN = bmc.example") || text.contains("CN=bmc.example"),
        "{text}"
    );
    assert!(
        text.contains("DNS:bmc.example") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("prime256v1") || text.contains("P-256"), "{text}");

    let ca = Ca::new("Redfin Test CA");
    std::fs::write(work.join("ca.pem"), &ca.pem).expect("write");
    std::fs::write(work.join("ca.key"), ca.key.serialize_pem()).expect("write");
    std::fs::write(work.join("ext.cnf"), "subjectAltName=DNS:bmc.example,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n").expect("write");
    let sign = Command::new("openssl")
        .current_dir(&work)
        .args([
            "x509",
            "-req",
            "-in",
            "req.pem",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-out",
            "signed.pem",
        ])
        .output()
        .expect("openssl x509");
    assert!(sign.status.success(), "{}", String::from_utf8_lossy(&sign.stderr));
    let signed = std::fs::read_to_string(work.join("signed.pem")).expect("signed");

    // A certificate for another key does not pair with the pending one.
    let (foreign, _) = ca.issue("bmc.example", &["bmc.example"], false);
    let r = admin.post(REPLACE, replace_body(&foreign)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(r.message_id().ends_with("ActionParameterValueError"));

    let chain = format!("{signed}{}", ca.pem);
    let mut body = replace_body(&chain);
    body["CertificateType"] = json!("PEMchain");
    let r = admin.post(REPLACE, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(presented(&bmc).await, der_of(&signed));
    let shown = admin.get(HTTPS_CERT).await;
    assert_eq!(shown.json["CertificateType"], "PEMchain");
    assert_eq!(shown.json["Issuer"]["CommonName"], "Redfin Test CA");
    assert_eq!(shown.json["Subject"]["Country"], "DE");
    assert_eq!(shown.json["Subject"]["City"], "Berlin");
    assert_eq!(
        shown.json["KeyUsage"],
        json!(["DigitalSignature", "ServerAuthentication"])
    );
    // The pending key is used up.
    assert!(!bmc.state_dir.join("tls/csr.key").exists());
    bmc.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_actions_need_configure_manager() {
    let dir = TempDir::new("cert-priv");
    let bmc = start(dir.path()).await;
    let admin = bmc.admin();
    for (user, role) in [("viewer", "ReadOnly"), ("operator", "Operator")] {
        let r = admin
            .post(
                "/redfish/v1/AccountService/Accounts",
                json!({"UserName": user, "Password": "viewer-pass-1", "RoleId": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let client = bmc.client().basic(user, "viewer-pass-1");
        assert_eq!(
            client.get("/redfish/v1/CertificateService").await.status,
            StatusCode::OK
        );
        assert_eq!(client.get(HTTPS_CERT).await.status, StatusCode::OK);
        let (cert, key) = self_signed("x.example");
        let r = client.post(REPLACE, replace_body(&format!("{cert}{key}"))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{user}");
        let r = client
            .post(
                GENERATE_CSR,
                json!({"CommonName": "x", "CertificateCollection": {"@odata.id": HTTPS_CERTS}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{user}");
    }
    assert!(!bmc.state_dir.join("tls/https.crt").exists());
    assert!(!bmc.state_dir.join("tls/csr.key").exists());
    bmc.stop().await;
}

fn client_identity(pem: &(String, String)) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    (
        vec![CertificateDer::from_pem_slice(pem.0.as_bytes()).expect("cert")],
        PrivateKeyDer::from_pem_slice(pem.1.as_bytes()).expect("key"),
    )
}

async fn start_mtls(dir: &Path, ca: &Ca, mode: bmcd::config::ClientAuth) -> TestBmc {
    let (uri, _) = test_node(dir, 1);
    let ca_file = dir.join("client-ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write");
    let mut config = TestBmc::config(&dir.join("state"), &uri);
    config.tls = bmcd::config::TlsConfig {
        client_ca: Some(ca_file),
        client_auth: mode,
    };
    TestBmc::start_with(config).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_certificate_authenticates_as_its_common_name() {
    let dir = TempDir::new("mtls-optional");
    let ca = Ca::new("Redfin Client CA");
    let bmc = start_mtls(dir.path(), &ca, bmcd::config::ClientAuth::Optional).await;
    let admin = bmc.admin();
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "operator1", "Password": "operator-pass-1", "RoleId": "Operator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let operator_uri = r.header("location").expect("location").to_owned();

    let service = admin.get("/redfish/v1/AccountService").await;
    let cc = &service.json["MultiFactorAuth"]["ClientCertificate"];
    assert_eq!(cc["Enabled"], true);
    assert_eq!(cc["RespondToUnauthenticatedClients"], true);
    assert_eq!(cc["CertificateMappingAttribute"], "CommonName");
    assert_eq!(cc["Certificates"]["@odata.id"], CLIENT_CAS);
    let cas = admin.get(CLIENT_CAS).await;
    assert_eq!(cas.json["Members@odata.count"], 1);
    let first = admin.get(&format!("{CLIENT_CAS}/1")).await;
    assert_eq!(first.json["Subject"]["CommonName"], "Redfin Client CA");
    assert_eq!(first.json["Fingerprint"], fingerprint(&der_of(&ca.pem)));

    // The certificate alone: the request acts as operator1.
    let (chain, key) = client_identity(&ca.issue("operator1", &[], true));
    let by_cert = bmc.client().with_client_certificate(chain, key);
    let r = by_cert.get("/redfish/v1/Systems").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = by_cert.get("/redfish/v1/AccountService/Accounts").await;
    assert_eq!(
        r.json["Members"],
        json!([{"@odata.id": operator_uri}]),
        "only its own account"
    );
    let (cert, key) = self_signed("x.example");
    let r = by_cert.post(REPLACE, replace_body(&format!("{cert}{key}"))).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "an Operator's certificate does not carry ConfigureManager"
    );

    // Explicit credentials win over the certificate.
    let r = by_cert
        .clone()
        .basic(ADMIN, ADMIN_PASSWORD)
        .get("/redfish/v1/AccountService/Accounts")
        .await;
    assert_eq!(r.json["Members@odata.count"], 2);

    // A certificate for a name with no account, or of a disabled account: 401.
    let (chain, key) = client_identity(&ca.issue("nobody", &[], true));
    let r = bmc
        .client()
        .with_client_certificate(chain, key)
        .get("/redfish/v1/Systems")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        admin.patch(&operator_uri, json!({"Enabled": false})).await.status,
        StatusCode::OK
    );
    assert_eq!(
        by_cert.get("/redfish/v1/Systems").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A certificate another CA signed is refused in the handshake.
    let other = Ca::new("Someone Else's CA");
    let (chain, key) = client_identity(&other.issue("operator1", &[], true));
    let r = bmc
        .client()
        .with_client_certificate(chain, key)
        .try_get("/redfish/v1/Systems")
        .await;
    assert!(r.is_err(), "a foreign client certificate was accepted: {r:?}");

    // Without a certificate: Basic and sessions as before, nothing without them.
    assert_eq!(admin.get("/redfish/v1/Systems").await.status, StatusCode::OK);
    assert_eq!(
        bmc.client().get("/redfish/v1/Systems").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(bmc.client().get("/redfish/v1").await.status, StatusCode::OK);
    bmc.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn required_client_certificates_refuse_certless_handshakes() {
    let dir = TempDir::new("mtls-required");
    let ca = Ca::new("Redfin Client CA");
    let bmc = start_mtls(dir.path(), &ca, bmcd::config::ClientAuth::Required).await;
    let r = bmc.admin().try_get("/redfish/v1/Systems").await;
    assert!(
        r.is_err(),
        "a handshake without a certificate was accepted: {r:?}"
    );
    let (chain, key) = client_identity(&ca.issue(ADMIN, &[], true));
    let by_cert = bmc.client().with_client_certificate(chain, key);
    let r = by_cert.get("/redfish/v1/AccountService").await;
    assert_eq!(r.status, StatusCode::OK);
    let cc = &r.json["MultiFactorAuth"]["ClientCertificate"];
    assert_eq!(cc["Enabled"], true);
    assert_eq!(cc["RespondToUnauthenticatedClients"], false);
    // With a certificate, a password login still works (a session for another account).
    let r = by_cert
        .clone()
        .basic(ADMIN, ADMIN_PASSWORD)
        .get("/redfish/v1/Systems")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    bmc.stop().await;
}

/// Adds a per-VM endpoint of the test driver's first domain; returns where it listens.
async fn add_endpoint(
    admin: &redfin_tests::Client,
    id: &str,
    persona: &str,
    ip: &str,
) -> std::net::SocketAddr {
    let r = admin
        .post(
            "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints",
            json!({"Id": id, "SystemId": "vm-1", "Persona": persona, "Address": format!("{ip}:0")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["ListeningOn"]
        .as_str()
        .expect("listening")
        .parse()
        .expect("address")
}

async fn presented_at(addr: std::net::SocketAddr) -> Vec<u8> {
    handshake(addr, rustls::ALL_VERSIONS).await.expect("handshake").0
}

/// Where an endpoint listens now (after a restart, from the OEM API).
async fn listening(admin: &redfin_tests::Client, id: &str) -> std::net::SocketAddr {
    let r = admin
        .get(&format!("/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints/{id}"))
        .await;
    r.json["ListeningOn"]
        .as_str()
        .expect("listening")
        .parse()
        .expect("address")
}

#[tokio::test(flavor = "multi_thread")]
async fn each_endpoint_has_its_own_certificate_replaced_alone_and_kept() {
    let dir = TempDir::new("cert-endpoints");
    let (uri, doms) = test_node(dir.path(), 1);
    assert_eq!(doms[0].name, "vm-1");
    let state = dir.path().join("state");
    let bmc = TestBmc::start(&state, &uri).await;
    let admin = bmc.admin();
    let drac_at = add_endpoint(&admin, "drac", "idrac9", "127.0.0.2").await;
    let ilo_at = add_endpoint(&admin, "ilo", "ilo5", "127.0.0.3").await;
    let drac = redfin_tests::Client::new(drac_at).basic(ADMIN, ADMIN_PASSWORD);
    let ilo = redfin_tests::Client::new(ilo_at).basic(ADMIN, ADMIN_PASSWORD);

    // Three BMCs, three certificates.
    let main = presented(&bmc).await;
    let drac_cert = presented_at(drac_at).await;
    let ilo_cert = presented_at(ilo_at).await;
    assert_ne!(drac_cert, main);
    assert_ne!(ilo_cert, main);
    assert_ne!(drac_cert, ilo_cert);

    // Each endpoint's CertificateService shows and manages its own, under
    // its persona's manager.
    const DRAC_CERTS: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/NetworkProtocol/HTTPS/Certificates";
    const ILO_CERTS: &str = "/redfish/v1/Managers/1/NetworkProtocol/HTTPS/Certificates";
    for (client, certs, cert, cn_prefix) in [
        (&drac, DRAC_CERTS, &drac_cert, "idrac-"),
        (&ilo, ILO_CERTS, &ilo_cert, "ILO"),
    ] {
        let root = client.get("/redfish/v1").await;
        assert_eq!(
            root.json["CertificateService"]["@odata.id"],
            "/redfish/v1/CertificateService"
        );
        let service = client.get("/redfish/v1/CertificateService").await;
        assert_eq!(service.status, StatusCode::OK, "{}", service.json);
        assert_eq!(
            service.json["Actions"]["#CertificateService.ReplaceCertificate"]["target"],
            REPLACE
        );
        let info = service.json["Actions"]["#CertificateService.GenerateCSR"]["@Redfish.ActionInfo"]
            .as_str()
            .expect("GenerateCSR ActionInfo")
            .to_owned();
        assert_eq!(client.get(&info).await.status, StatusCode::OK);
        let manager = certs.trim_end_matches("/NetworkProtocol/HTTPS/Certificates");
        let protocol = client.get(&format!("{manager}/NetworkProtocol")).await;
        assert_eq!(protocol.json["HTTPS"]["Certificates"]["@odata.id"], certs);
        let locations = client
            .get("/redfish/v1/CertificateService/CertificateLocations")
            .await;
        assert_eq!(
            locations.json["Links"]["Certificates"][0]["@odata.id"],
            format!("{certs}/1")
        );
        let collection = client.get(certs).await;
        assert_eq!(
            collection.json["Members"],
            json!([{"@odata.id": format!("{certs}/1")}])
        );
        let shown = client.get(&format!("{certs}/1")).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.json);
        assert_eq!(shown.json["Fingerprint"], fingerprint(cert));
        let cn = shown.json["Subject"]["CommonName"].as_str().unwrap_or("");
        assert!(cn.starts_with(cn_prefix), "{cn}");
        // The aggregate BMC's certificate is not this endpoint's to show.
        assert_eq!(client.get(HTTPS_CERT).await.status, StatusCode::NOT_FOUND);
    }
    // The aggregate still shows its own.
    let shown = admin.get(HTTPS_CERT).await;
    assert_eq!(shown.json["Fingerprint"], fingerprint(&main));

    // Bad bodies: 400 with extended info, nothing changed.
    let (cert, key) = self_signed("idrac-new.example");
    let good = json!({
        "CertificateString": format!("{cert}{key}"),
        "CertificateType": "PEM",
        "CertificateUri": {"@odata.id": format!("{DRAC_CERTS}/1")},
    });
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("CertificateType");
    let mut unknown = good.clone();
    unknown["Colour"] = json!("blue");
    let mut wrong_type = good.clone();
    wrong_type["CertificateString"] = json!(42);
    let mut bad_type = good.clone();
    bad_type["CertificateType"] = json!("DER");
    let mut aggregate_target = good.clone();
    aggregate_target["CertificateUri"] = json!({"@odata.id": HTTPS_CERT});
    let mut other_endpoint = good.clone();
    other_endpoint["CertificateUri"] = json!({"@odata.id": format!("{ILO_CERTS}/1")});
    for (what, body) in [
        ("missing CertificateType", missing),
        ("unknown property", unknown),
        ("CertificateString of the wrong type", wrong_type),
        ("CertificateType not in the list", bad_type),
        ("the aggregate BMC's certificate", aggregate_target),
        ("another persona's certificate path", other_endpoint),
    ] {
        let r = drac.post(REPLACE, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.json);
        assert!(!r.message_id().is_empty(), "{what}: {}", r.json);
    }
    let r = drac
        .raw(
            hyper::Method::POST,
            REPLACE,
            Some(bytes::Bytes::from_static(b"{not json")),
            Some("application/json"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(!r.message_id().is_empty(), "{}", r.json);
    assert_eq!(presented_at(drac_at).await, drac_cert);

    // Replacing the iDRAC endpoint's certificate changes that endpoint only.
    let r = drac.post(REPLACE, good).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let new = der_of(&cert);
    assert_eq!(presented_at(drac_at).await, new);
    assert_eq!(presented_at(ilo_at).await, ilo_cert);
    assert_eq!(presented(&bmc).await, main);
    let shown = drac.get(&format!("{DRAC_CERTS}/1")).await;
    assert_eq!(shown.json["Fingerprint"], fingerprint(&new));
    assert_eq!(
        admin.get(HTTPS_CERT).await.json["Fingerprint"],
        fingerprint(&main)
    );

    // An iLO client may spell its paths in any case, with a trailing slash.
    let (ilo_new, ilo_key) = self_signed("ilo-new.example");
    let r = ilo
        .post(
            REPLACE,
            json!({
                "CertificateString": format!("{ilo_new}{ilo_key}"),
                "CertificateType": "PEM",
                "CertificateUri": {"@odata.id": "/redfish/v1/managers/1/networkprotocol/https/certificates/1/"},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let ilo_new = der_of(&ilo_new);
    assert_eq!(presented_at(ilo_at).await, ilo_new);
    assert_eq!(presented_at(drac_at).await, new);

    // A restart keeps each endpoint's certificate.
    bmc.stop().await;
    let bmc = TestBmc::start(&state, &uri).await;
    let admin = bmc.admin();
    assert_eq!(presented(&bmc).await, main);
    assert_eq!(presented_at(listening(&admin, "drac").await).await, new);
    assert_eq!(presented_at(listening(&admin, "ilo").await).await, ilo_new);

    // A deleted endpoint's certificate goes with it: added again, it makes a new one.
    let r = admin
        .delete("/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints/drac")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let again = add_endpoint(&admin, "drac", "idrac9", "127.0.0.2").await;
    let fresh = presented_at(again).await;
    assert_ne!(fresh, new);
    assert_ne!(fresh, main);
    bmc.stop().await;
}

/// GenerateCSR on a per-VM endpoint: the request is for that endpoint's
/// collection (in its persona's spelling), its key waits in the state
/// database, and the certificate signed for it is installed there alone.
/// A ReadOnly caller can do neither.
#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_csr_is_signed_and_installed_on_that_endpoint() {
    let dir = TempDir::new("cert-endpoint-csr");
    let (uri, _) = test_node(dir.path(), 1);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "viewer", "Password": "viewer-pass-1", "RoleId": "ReadOnly"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let at = add_endpoint(&admin, "ilo", "ilo5", "127.0.0.3").await;
    let ilo = redfin_tests::Client::new(at).basic(ADMIN, ADMIN_PASSWORD);
    let viewer = redfin_tests::Client::new(at).basic("viewer", "viewer-pass-1");
    const CERTS: &str = "/redfish/v1/Managers/1/NetworkProtocol/HTTPS/Certificates";
    let main = presented(&bmc).await;
    let before = presented_at(at).await;
    let csr_body = json!({
        "CertificateCollection": {"@odata.id": CERTS},
        "CommonName": "ilo.example",
        "AlternativeNames": ["ilo.example", "127.0.0.3"],
    });
    assert_eq!(
        viewer.post(GENERATE_CSR, csr_body.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let mut wrong = csr_body.clone();
    wrong["CertificateCollection"] = json!({"@odata.id": HTTPS_CERTS});
    let r = ilo.post(GENERATE_CSR, wrong).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(
        r.message_id().ends_with("ActionParameterValueError"),
        "{}",
        r.json
    );
    let r = ilo.post(GENERATE_CSR, csr_body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["CertificateCollection"]["@odata.id"], CERTS);
    let csr = r.json["CSRString"].as_str().expect("CSRString").to_owned();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    // The aggregate BMC has no pending request of its own.
    assert!(!bmc.state_dir.join("tls/csr.key").exists());
    if !openssl() {
        eprintln!("openssl not installed: the CSR is not signed and installed");
        bmc.stop().await;
        return;
    }
    let work = dir.path().join("ca");
    std::fs::create_dir_all(&work).expect("dir");
    std::fs::write(work.join("req.pem"), &csr).expect("write");
    let ca = Ca::new("Redfin Test CA");
    std::fs::write(work.join("ca.pem"), &ca.pem).expect("write");
    std::fs::write(work.join("ca.key"), ca.key.serialize_pem()).expect("write");
    std::fs::write(
        work.join("ext.cnf"),
        "subjectAltName=DNS:ilo.example,IP:127.0.0.3\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
    )
    .expect("write");
    let sign = Command::new("openssl")
        .current_dir(&work)
        .args([
            "x509",
            "-req",
            "-in",
            "req.pem",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-out",
            "signed.pem",
        ])
        .output()
        .expect("openssl x509");
    assert!(sign.status.success(), "{}", String::from_utf8_lossy(&sign.stderr));
    let signed = std::fs::read_to_string(work.join("signed.pem")).expect("signed");
    let body = json!({
        "CertificateString": signed,
        "CertificateType": "PEM",
        "CertificateUri": {"@odata.id": format!("{CERTS}/1")},
    });
    assert_eq!(
        viewer.post(REPLACE, body.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    // Not the aggregate's pending request: the aggregate has none.
    let r = admin.post(REPLACE, replace_body(&signed)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(presented_at(at).await, before);
    let r = ilo.post(REPLACE, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(presented_at(at).await, der_of(&signed));
    assert_eq!(presented(&bmc).await, main);
    let shown = ilo.get(&format!("{CERTS}/1")).await;
    assert_eq!(shown.json["Subject"]["CommonName"], "ilo.example");
    assert_eq!(shown.json["Issuer"]["CommonName"], "Redfin Test CA");
    bmc.stop().await;
}
