//! `CertificateService` (`CertificateLocations`, `ReplaceCertificate`,
//! `GenerateCSR`) and the certificates it manages: the manager's HTTPS
//! certificate and the CAs trusted for client certificates (AccountService
//! `MultiFactorAuth.ClientCertificate.Certificates`, from the configuration).
//!
//! The same service on every BMC: on the aggregate endpoint it manages the
//! appliance's certificate (`Managers/BMC`), on a per-VM endpoint that
//! endpoint's own (under its system's manager), and nothing else.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{collection, link};
use crate::body::{Context, Fields};
use crate::certificates::{Certificates, Shown, REPLACE_CERTIFICATE};
use crate::error::{Message, RedfishError};
use crate::http::der::{colon_hex, Name};
use crate::http::x509::CsrSubject;
use crate::privilege::Required;
use crate::registries::base;
use crate::resources::managers::BMC_ID;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;
use crate::time::rfc3339;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/CertificateService", Required::LOGIN, get_certificate_service),
        route!(GET "/redfish/v1/CertificateService/CertificateLocations", Required::LOGIN, get_certificate_locations),
        route!(POST "/redfish/v1/CertificateService/Actions/CertificateService.ReplaceCertificate", Required::CONFIGURE_MANAGER, post_replace_certificate),
        route!(POST "/redfish/v1/CertificateService/Actions/CertificateService.GenerateCSR", Required::CONFIGURE_MANAGER, post_generate_csr),
        route!(GET "/redfish/v1/CertificateService/GenerateCSRActionInfo", Required::LOGIN, get_generate_csr_action_info),
        route!(GET "/redfish/v1/Managers/{id}/NetworkProtocol/HTTPS/Certificates", Required::LOGIN, get_https_certificate_collection),
        route!(GET "/redfish/v1/Managers/{id}/NetworkProtocol/HTTPS/Certificates/{cert}", Required::LOGIN, get_https_certificate),
        route!(GET "/redfish/v1/AccountService/MultiFactorAuth/ClientCertificate/Certificates", Required::LOGIN, get_client_ca_collection),
        route!(GET "/redfish/v1/AccountService/MultiFactorAuth/ClientCertificate/Certificates/{cert}", Required::LOGIN, get_client_ca),
    ]
}

const SERVICE: &str = "/redfish/v1/CertificateService";
const LOCATIONS: &str = "/redfish/v1/CertificateService/CertificateLocations";
const REPLACE: &str = "/redfish/v1/CertificateService/Actions/CertificateService.ReplaceCertificate";
const GENERATE_CSR: &str = "/redfish/v1/CertificateService/Actions/CertificateService.GenerateCSR";
const GENERATE_CSR_ACTION: &str = "CertificateService.GenerateCSR";
const GENERATE_CSR_ACTION_INFO: &str = "/redfish/v1/CertificateService/GenerateCSRActionInfo";
/// The client CAs: a collection AccountService links to.
pub const CLIENT_CAS: &str = "/redfish/v1/AccountService/MultiFactorAuth/ClientCertificate/Certificates";
/// The one HTTPS certificate's id.
const HTTPS_ID: &str = "1";

/// The HTTPS certificate collection of a manager (`BMC_ID` for the aggregate
/// BMC, the system's id for a per-VM endpoint).
pub fn https_certificates(manager: &str) -> String {
    format!("/redfish/v1/Managers/{manager}/NetworkProtocol/HTTPS/Certificates")
}

/// The BMC a request reaches: its certificates, and the manager whose HTTPS
/// certificate they are.
struct Bmc {
    certificates: Arc<Certificates>,
    manager: String,
}

impl Bmc {
    fn of(req: &Request) -> Result<Bmc, RedfishError> {
        match &req.endpoint {
            None => Ok(Bmc {
                certificates: Arc::clone(&req.app.certificates),
                manager: BMC_ID.to_owned(),
            }),
            Some(ep) => Ok(Bmc {
                certificates: req.app.endpoints.certificates(&ep.id).ok_or_else(|| {
                    tracing::error!(endpoint = %ep.id, "a running endpoint without certificates");
                    RedfishError::internal()
                })?,
                manager: ep.system_id.clone(),
            }),
        }
    }

    fn collection(&self) -> String {
        https_certificates(&self.manager)
    }

    fn certificate(&self) -> String {
        format!("{}/{HTTPS_ID}", self.collection())
    }
}

/// A URI a request body names, as the canonical routes spell it (a per-VM
/// endpoint's clients use its persona's spelling).
fn canonical_uri(req: &Request, uri: &str) -> String {
    let uri = crate::router::normalize(uri);
    let Some(ep) = &req.endpoint else {
        return uri.to_owned();
    };
    let canonical = ep.to_canonical(uri);
    if ep.ignores_case() {
        if let Some(c) = req.app.router.canonical_case(&canonical) {
            return c;
        }
    }
    canonical
}

/// A canonical URI as the request's client spells it, for messages.
fn shown_uri(req: &Request, uri: &str) -> String {
    match &req.endpoint {
        Some(ep) => ep.to_persona(uri),
        None => uri.to_owned(),
    }
}

/// `Certificate.Identifier` of a distinguished name.
fn identifier(name: &Name, alt_names: Option<&[String]>) -> Value {
    let mut v = json!({ "DisplayString": name.display() });
    let single = [
        ("CN", "CommonName"),
        ("O", "Organization"),
        ("OU", "OrganizationalUnit"),
        ("L", "City"),
        ("ST", "State"),
        ("C", "Country"),
        ("emailAddress", "Email"),
    ];
    for (short, property) in single {
        if let Some(value) = name.get(short) {
            v[property] = json!(value);
        }
    }
    let more = |short: &str| name.all(short).into_iter().skip(1).collect::<Vec<_>>();
    if !more("CN").is_empty() {
        v["AdditionalCommonNames"] = json!(more("CN"));
    }
    if !more("OU").is_empty() {
        v["AdditionalOrganizationalUnits"] = json!(more("OU"));
    }
    if !name.all("DC").is_empty() {
        v["DomainComponents"] = json!(name.all("DC"));
    }
    if let Some(alt) = alt_names.filter(|a| !a.is_empty()) {
        v["AlternativeNames"] = json!(alt);
    }
    v
}

/// A `Certificate` resource.
fn certificate_json(uri: &str, id: &str, name: &str, shown: &Shown, usage: Option<&str>) -> Value {
    let info = &shown.info;
    let spki_hash = ring::digest::digest(&ring::digest::SHA256, &info.spki);
    let mut v = json!({
        "@odata.id": uri,
        "@odata.type": schemas::CERTIFICATE.odata_type(),
        "Id": id,
        "Name": name,
        "CertificateString": shown.pem(),
        "CertificateType": if shown.chain.len() > 1 { "PEMchain" } else { "PEM" },
        "Subject": identifier(&info.subject, Some(&info.alt_names)),
        "Issuer": identifier(&info.issuer, None),
        "ValidNotBefore": rfc3339(info.not_before),
        "ValidNotAfter": rfc3339(info.not_after),
        "KeyUsage": info.key_usage,
        "SerialNumber": colon_hex(&info.serial),
        "Fingerprint": colon_hex(&shown.fingerprint()),
        "FingerprintHashAlgorithm": "TPM_ALG_SHA256",
        "SignatureAlgorithm": info.signature_algorithm,
        "Oem": {
            "Redfin": {
                "SubjectPublicKeyInfo": {
                    "Algorithm": info.public_key_algorithm,
                    "SHA256": colon_hex(spki_hash.as_ref()),
                },
            },
        },
    });
    if let Some(u) = usage {
        v["CertificateUsageTypes"] = json!([u]);
    }
    v
}

async fn get_certificate_service(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::ok(json!({
        "@odata.id": SERVICE,
        "@odata.type": schemas::CERTIFICATE_SERVICE.odata_type(),
        "Id": "CertificateService",
        "Name": "Certificate Service",
        "Description": "Replaces the BMC's HTTPS certificate and makes certificate signing requests",
        "CertificateLocations": link(LOCATIONS),
        "Actions": {
            "#CertificateService.ReplaceCertificate": {
                "target": REPLACE,
                "CertificateType@Redfish.AllowableValues": ["PEM", "PEMchain"],
            },
            "#CertificateService.GenerateCSR": {
                "target": GENERATE_CSR,
                "@Redfish.ActionInfo": GENERATE_CSR_ACTION_INFO,
                "KeyPairAlgorithm@Redfish.AllowableValues": ["TPM_ALG_ECDSA"],
                "KeyCurveId@Redfish.AllowableValues": ["TPM_ECC_NIST_P256"],
            },
        },
    })))
}

async fn get_certificate_locations(req: Request) -> Result<Reply, RedfishError> {
    let bmc = Bmc::of(&req)?;
    let mut certificates = vec![link(&bmc.certificate())];
    if let Some(cas) = bmc.certificates.client_cas() {
        certificates.extend((1..=cas.certificates.len()).map(|i| link(&format!("{CLIENT_CAS}/{i}"))));
    }
    Ok(Reply::ok(json!({
        "@odata.id": LOCATIONS,
        "@odata.type": schemas::CERTIFICATE_LOCATIONS.odata_type(),
        "Id": "CertificateLocations",
        "Name": "Certificate Locations",
        "Description": "The certificates the BMC uses: its HTTPS certificate and the CAs of client certificates",
        "Links": {
            "Certificates@odata.count": certificates.len(),
            "Certificates": certificates,
        },
    })))
}

/// The BMC whose manager the request's path names.
fn managing_bmc(req: &Request) -> Result<Bmc, RedfishError> {
    let bmc = Bmc::of(req)?;
    if req.param(0) == bmc.manager {
        Ok(bmc)
    } else {
        Err(RedfishError::no_such_uri(&req.path))
    }
}

async fn get_https_certificate_collection(req: Request) -> Result<Reply, RedfishError> {
    let bmc = managing_bmc(&req)?;
    Ok(Reply::ok(collection(
        &schemas::CERTIFICATE_COLLECTION,
        &bmc.collection(),
        "HTTPS Certificates",
        [bmc.certificate()],
    )))
}

async fn get_https_certificate(req: Request) -> Result<Reply, RedfishError> {
    let bmc = managing_bmc(&req)?;
    if req.param(1) != HTTPS_ID {
        return Err(RedfishError::not_found("Certificate", req.param(1)));
    }
    let shown = bmc.certificates.https();
    Ok(Reply::ok(certificate_json(
        &bmc.certificate(),
        HTTPS_ID,
        "HTTPS Certificate",
        &shown,
        Some("Web"),
    )))
}

async fn get_client_ca_collection(req: Request) -> Result<Reply, RedfishError> {
    let n = req
        .app
        .certificates
        .client_cas()
        .map_or(0, |c| c.certificates.len());
    Ok(Reply::ok(collection(
        &schemas::CERTIFICATE_COLLECTION,
        CLIENT_CAS,
        "Client Certificate Authorities",
        (1..=n).map(|i| format!("{CLIENT_CAS}/{i}")),
    )))
}

async fn get_client_ca(req: Request) -> Result<Reply, RedfishError> {
    let id = req.param(0);
    let shown = id
        .parse::<usize>()
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| req.app.certificates.client_cas()?.certificates.get(i).cloned())
        .ok_or_else(|| RedfishError::not_found("Certificate", id))?;
    Ok(Reply::ok(certificate_json(
        &format!("{CLIENT_CAS}/{id}"),
        id,
        "Client Certificate Authority",
        &shown,
        None,
    )))
}

/// The `@odata.id` of a link parameter (`{"@odata.id": "..."}`).
fn link_parameter(body: &mut Fields, name: &str) -> Result<Option<String>, RedfishError> {
    let Some(mut inner) = body.object(name)? else {
        return Ok(None);
    };
    let uri = inner.string("@odata.id")?;
    inner.finish()?;
    Ok(Some(uri.unwrap_or_default()))
}

/// Refuses parameters of the schema this service does not implement.
fn not_supported(body: &mut Fields, action: &str, names: &[&str]) -> Result<(), RedfishError> {
    for name in names {
        if body.take(name).is_some() {
            return Err(RedfishError::bad_request(
                Message::new(&base::ACTION_PARAMETER_NOT_SUPPORTED, &[name, action])
                    .related(format!("#/{name}")),
            ));
        }
    }
    Ok(())
}

async fn post_replace_certificate(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action(REPLACE_CERTIFICATE))?;
    let pem = body.string("CertificateString")?;
    let kind = body.enumerated("CertificateType", |t| {
        matches!(t, "PEM" | "PEMchain").then_some(())
    })?;
    let target = link_parameter(&mut body, "CertificateUri")?;
    not_supported(&mut body, REPLACE_CERTIFICATE, &["Password"])?;
    let pem = body.required("CertificateString", pem)?;
    body.required("CertificateType", kind)?;
    let target = body.required("CertificateUri", target)?;
    body.finish()?;
    let bmc = Bmc::of(&req)?;
    if canonical_uri(&req, &target) != bmc.certificate() {
        return Err(RedfishError::bad_request(
            Message::new(
                &base::ACTION_PARAMETER_VALUE_ERROR,
                &["CertificateUri", REPLACE_CERTIFICATE],
            )
            .related("#/CertificateUri")
            .resolution(format!(
                "Only the HTTPS certificate ({}) can be replaced; the client certificate CAs come from \
                     the configuration file.",
                shown_uri(&req, &bmc.certificate())
            )),
        ));
    }
    let shown = bmc.certificates.replace_https(pem).await?;
    Ok(Reply::ok(certificate_json(
        &bmc.certificate(),
        HTTPS_ID,
        "HTTPS Certificate",
        &shown,
        Some("Web"),
    )))
}

/// The longest value of a name attribute (X.520's upper bound).
const MAX_NAME_VALUE: usize = 64;

fn name_value(body: &mut Fields, key: &str) -> Result<Option<String>, RedfishError> {
    match body.string(key)? {
        Some(v) if v.is_empty() || v.chars().count() > MAX_NAME_VALUE || v.chars().any(char::is_control) => {
            Err(format_error(&v, key))
        }
        other => Ok(other),
    }
}

fn format_error(value: &str, key: &str) -> RedfishError {
    RedfishError::bad_request(
        Message::new(
            &base::ACTION_PARAMETER_VALUE_FORMAT_ERROR,
            &[value, key, GENERATE_CSR_ACTION],
        )
        .related(format!("#/{key}")),
    )
}

/// The parameters `GenerateCSR` takes, as `post_generate_csr` reads them.
async fn get_generate_csr_action_info(_req: Request) -> Result<Reply, RedfishError> {
    let text =
        |name: &str, required: bool| json!({ "Name": name, "Required": required, "DataType": "String" });
    Ok(Reply::ok(json!({
        "@odata.id": GENERATE_CSR_ACTION_INFO,
        "@odata.type": schemas::ACTION_INFO.odata_type(),
        "Id": "GenerateCSRActionInfo",
        "Name": "GenerateCSR Action Info",
        "Parameters": [
            { "Name": "CertificateCollection", "Required": true, "DataType": "Object", "ObjectDataType": "#CertificateCollection.CertificateCollection" },
            text("CommonName", true),
            text("Organization", false),
            text("OrganizationalUnit", false),
            text("City", false),
            text("State", false),
            text("Country", false),
            text("Email", false),
            { "Name": "AlternativeNames", "Required": false, "DataType": "StringArray" },
            { "Name": "KeyPairAlgorithm", "Required": false, "DataType": "String", "AllowableValues": ["TPM_ALG_ECDSA"] },
            { "Name": "KeyCurveId", "Required": false, "DataType": "String", "AllowableValues": ["TPM_ECC_NIST_P256"] },
            { "Name": "KeyBitLength", "Required": false, "DataType": "Number", "AllowableNumbers": ["256"] },
        ],
    })))
}

async fn post_generate_csr(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action(GENERATE_CSR_ACTION))?;
    let common_name = name_value(&mut body, "CommonName")?;
    let organization = name_value(&mut body, "Organization")?;
    let organizational_unit = name_value(&mut body, "OrganizationalUnit")?;
    let city = name_value(&mut body, "City")?;
    let state = name_value(&mut body, "State")?;
    let country = body.string("Country")?;
    let email = body.string("Email")?;
    let alternative_names = match body.take("AlternativeNames") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) if !s.is_empty() && s.len() <= 253 && s.is_ascii() => Ok(s),
                other => Err(format_error(&other.to_string(), "AlternativeNames")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(RedfishError::action_parameter_value_type(
                &other.to_string(),
                "AlternativeNames",
                GENERATE_CSR_ACTION,
            ))
        }
    };
    body.enumerated("KeyPairAlgorithm", |a| {
        matches!(a, "TPM_ALG_ECDSA" | "TPM_ALG_ECC").then_some(())
    })?;
    body.enumerated("KeyCurveId", |c| (c == "TPM_ECC_NIST_P256").then_some(()))?;
    if let Some(bits) = body.integer("KeyBitLength")? {
        if bits != 256 {
            return Err(RedfishError::action_parameter_value_not_in_list(
                &bits.to_string(),
                "KeyBitLength",
                GENERATE_CSR_ACTION,
            ));
        }
    }
    let collection_uri = link_parameter(&mut body, "CertificateCollection")?;
    not_supported(
        &mut body,
        GENERATE_CSR_ACTION,
        &[
            "KeyUsage",
            "Surname",
            "GivenName",
            "Initials",
            "ChallengePassword",
            "UnstructuredName",
            "ContactPerson",
        ],
    )?;
    let common_name = body.required("CommonName", common_name)?;
    let collection_uri = body.required("CertificateCollection", collection_uri)?;
    body.finish()?;
    if let Some(c) = &country {
        if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
            return Err(format_error(c, "Country"));
        }
    }
    if let Some(e) = &email {
        if !e.is_ascii() || !e.contains('@') || e.len() > 255 {
            return Err(format_error(e, "Email"));
        }
    }
    let bmc = Bmc::of(&req)?;
    if canonical_uri(&req, &collection_uri) != bmc.collection() {
        return Err(RedfishError::bad_request(
            Message::new(
                &base::ACTION_PARAMETER_VALUE_ERROR,
                &["CertificateCollection", GENERATE_CSR_ACTION],
            )
            .related("#/CertificateCollection")
            .resolution(format!(
                "Certificate signing requests are made for the HTTPS certificate collection ({}).",
                shown_uri(&req, &bmc.collection())
            )),
        ));
    }
    let subject = CsrSubject {
        common_name,
        alternative_names,
        organization,
        organizational_unit,
        city,
        state,
        country,
        email,
    };
    let csr = bmc.certificates.generate_csr(subject).await?;
    Ok(Reply::ok(json!({
        "CSRString": csr,
        "CertificateCollection": link(&bmc.collection()),
    })))
}
