//! `Managers`: the BMC itself, its network interfaces and protocols.

use crate::json;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::body::{Context, Fields};
use crate::error::RedfishError;
use crate::host::{self, HostInterface};
use crate::manager_reset::ManagerResetType;
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;
use crate::time::{now_unix, rfc3339};

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Managers", Required::LOGIN, get_manager_collection),
        route!(GET "/redfish/v1/Managers/{id}", Required::LOGIN, get_manager),
        route!(POST "/redfish/v1/Managers/{id}/Actions/Manager.Reset", Required::CONFIGURE_MANAGER, post_manager_reset),
        route!(GET "/redfish/v1/Managers/{id}/EthernetInterfaces", Required::LOGIN, get_ethernet_interface_collection),
        route!(GET "/redfish/v1/Managers/{id}/EthernetInterfaces/{nic}", Required::LOGIN, get_ethernet_interface),
        route!(PATCH "/redfish/v1/Managers/{id}/EthernetInterfaces/{nic}", Required::CONFIGURE_MANAGER, patch_ethernet_interface),
        route!(GET "/redfish/v1/Managers/{id}/NetworkProtocol", Required::LOGIN, get_network_protocol),
    ]
}

/// The id of the BMC's own manager.
pub const BMC_ID: &str = "BMC";
const MANAGERS: &str = "/redfish/v1/Managers";

/// The addressed manager exists: the BMC, or the per-VM BMC of an existing
/// system. Both reach the network through the BMC's own interfaces.
async fn check_id(req: &Request) -> Result<(), RedfishError> {
    if req.param(0) == BMC_ID {
        return Ok(());
    }
    match req.app.hypervisor.system(req.param(0).to_owned()).await {
        Ok(_) => Ok(()),
        Err(crate::model::HypervisorError::SystemNotFound(_)) => {
            Err(RedfishError::not_found("Manager", req.param(0)))
        }
        Err(e) => Err(e.into()),
    }
}

const RESET_ACTION: &str = "Manager.Reset";

fn reset_action(uri: &str) -> Value {
    json!({
        "#Manager.Reset": {
            "target": format!("{uri}/Actions/Manager.Reset"),
            "ResetType@Redfish.AllowableValues": ManagerResetType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        }
    })
}

/// A UUID of its own for the BMC of one system, derived from the system's.
fn system_manager_uuid(system_id: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("redfin-manager:{system_id}").as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The BMC's identity on the network as set through Redfish (`HostName`,
/// `FQDN`, `StaticNameServers`), over what the host it runs on says.
struct NetworkIdentity {
    host_name: String,
    fqdn: String,
    static_name_servers: Vec<String>,
    /// The resolver's servers (`/etc/resolv.conf`).
    name_servers: Vec<String>,
}

const HOST_NAME: &str = "bmc_host_name";
const FQDN: &str = "bmc_fqdn";
const STATIC_NAME_SERVERS: &str = "bmc_static_name_servers";

async fn network_identity(req: &Request) -> Result<NetworkIdentity, RedfishError> {
    let store = &req.app.store;
    let host_name = match store.setting(HOST_NAME).await? {
        Some(h) => h,
        None => host::host_name(),
    };
    let fqdn = store.setting(FQDN).await?.unwrap_or_else(|| host_name.clone());
    let static_name_servers: Vec<String> = store
        .setting(STATIC_NAME_SERVERS)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    let resolver = tokio::task::spawn_blocking(host::name_servers)
        .await
        .unwrap_or_default();
    let mut name_servers = static_name_servers.clone();
    name_servers.extend(resolver.into_iter().filter(|s| !static_name_servers.contains(s)));
    Ok(NetworkIdentity {
        host_name,
        fqdn,
        static_name_servers,
        name_servers,
    })
}

/// Interfaces worth reporting: every one but loopback, or loopback alone when
/// the BMC has nothing else.
fn reported_interfaces() -> Vec<HostInterface> {
    let all = host::interfaces();
    let external: Vec<HostInterface> = all.iter().filter(|i| !i.loopback).cloned().collect();
    if external.is_empty() {
        all
    } else {
        external
    }
}

async fn get_manager_collection(req: Request) -> Result<Reply, RedfishError> {
    let systems = req.app.hypervisor.list_systems().await?;
    let mut members = vec![format!("{MANAGERS}/{BMC_ID}")];
    members.extend(systems.iter().map(|s| format!("{MANAGERS}/{}", s.id)));
    Ok(Reply::ok(collection(
        &schemas::MANAGER_COLLECTION,
        MANAGERS,
        "Manager Collection",
        members,
    )))
}

/// The manager of one system: the BMC as that system sees it, holding its
/// virtual media.
async fn get_system_manager(req: &Request) -> Result<Reply, RedfishError> {
    let id = req.param(0);
    let s = match req.app.hypervisor.system(id.to_owned()).await {
        Ok(s) => s,
        Err(crate::model::HypervisorError::SystemNotFound(_)) => {
            return Err(RedfishError::not_found("Manager", id))
        }
        Err(e) => return Err(e.into()),
    };
    let uri = format!("{MANAGERS}/{}", s.id);
    let reset = req.app.manager_resets.system_bmc(&s.id);
    let mut body = json!({
        "@odata.id": uri,
        "@odata.type": schemas::MANAGER.odata_type(),
        "Id": s.id,
        "Name": format!("BMC of {}", s.name),
        "Description": "The BMC of this system: its virtual media, log, network and reset",
        "ManagerType": "BMC",
        "UUID": system_manager_uuid(&s.id),
        "Manufacturer": "Redfin",
        "Model": "Redfin bmcd",
        "FirmwareVersion": req.app.service.firmware_version,
        "PowerState": "On",
        // The system's serial console, through console-proxy's WebSocket
        // (the system's SerialConsole.WebSocket) and, when console-proxy's SSH
        // listener is configured (`console-ssh-port`), over SSH.
        "SerialConsole": {
            "ServiceEnabled": s.consoles.serial,
            "MaxConcurrentSessions": req.app.consoles.max_sessions(),
            "ConnectTypesSupported": if req.app.consoles.ssh_port().is_some() {
                json!(["SSH", "Oem"])
            } else {
                json!(["Oem"])
            },
        },
        "Status": match reset {
            Some((_, true)) => json!({ "State": "Starting", "Health": "OK" }),
            _ => status_ok(),
        },
        "DateTime": rfc3339(now_unix()),
        "DateTimeLocalOffset": "+00:00",
        "VirtualMedia": link(&format!("{uri}/VirtualMedia")),
        "EthernetInterfaces": link(&format!("{uri}/EthernetInterfaces")),
        "NetworkProtocol": link(&format!("{uri}/NetworkProtocol")),
        "LogServices": link(&format!("{uri}/LogServices")),
        "Actions": reset_action(&uri),
        "Links": {
            "ManagerForServers": [link(&format!("/redfish/v1/Systems/{}", s.id))],
            "ManagerForChassis": [link(&format!("/redfish/v1/Chassis/{}", s.id))],
        },
    });
    if let Some((at_ms, _)) = reset {
        body["LastResetTime"] = json!(rfc3339(at_ms / 1000));
    }
    Ok(Reply::ok(body))
}

async fn post_manager_reset(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action(RESET_ACTION))?;
    let reset_type = body.enumerated("ResetType", ManagerResetType::parse)?;
    // ResetType is optional in the schema; a real BMC restarts gracefully then.
    let reset_type = reset_type.unwrap_or(ManagerResetType::GracefulRestart);
    body.finish()?;
    let id = req.param(0);
    if id == BMC_ID {
        tracing::warn!(
            reset_type = reset_type.as_str(),
            "BMC reset requested: bmcd restarts"
        );
        req.app.manager_resets.reset_bmc(reset_type);
        return Ok(Reply::NoContent);
    }
    check_id(&req).await?;
    tracing::info!(
        system_id = id,
        reset_type = reset_type.as_str(),
        "per-VM BMC reset"
    );
    req.app.manager_resets.reset_system_bmc(&req.app, id);
    Ok(Reply::NoContent)
}

async fn get_manager(req: Request) -> Result<Reply, RedfishError> {
    if req.param(0) != BMC_ID {
        return get_system_manager(&req).await;
    }
    let systems = req.app.hypervisor.list_systems().await?;
    let uri = format!("{MANAGERS}/{BMC_ID}");
    let s = &req.app.service;
    let firmware = &req.app.firmware;
    let mut body = json!({
        "@odata.id": uri,
        "@odata.type": schemas::MANAGER.odata_type(),
        "Id": BMC_ID,
        "Name": "Redfin BMC",
        "Description": format!("Redfish BMC for the virtual machines of {}", s.libvirt_uri),
        "ManagerType": "BMC",
        "UUID": s.uuid,
        "ServiceEntryPointUUID": s.uuid,
        "Manufacturer": "Redfin",
        "Model": "Redfin bmcd",
        "FirmwareVersion": if firmware.enabled() { firmware.version() } else { s.firmware_version },
        "PowerState": "On",
        // The appliance offers no console of its own; each system's is on
        // its own manager.
        "SerialConsole": {
            "ServiceEnabled": false,
            "MaxConcurrentSessions": 0,
            "ConnectTypesSupported": [],
        },
        "Status": status_ok(),
        "DateTime": rfc3339(now_unix()),
        "DateTimeLocalOffset": "+00:00",
        "EthernetInterfaces": link(&format!("{uri}/EthernetInterfaces")),
        "NetworkProtocol": link(&format!("{uri}/NetworkProtocol")),
        "LogServices": link(&format!("{uri}/LogServices")),
        "Actions": reset_action(&uri),
        "Links": {
            "ManagerForServers": systems.iter().map(|x| link(&format!("/redfish/v1/Systems/{}", x.id))).collect::<Vec<_>>(),
            "ManagerForChassis": systems.iter().map(|x| link(&format!("/redfish/v1/Chassis/{}", x.id))).collect::<Vec<_>>(),
        },
    });
    // The firmware banks: the one running, and both.
    if let Some(active) = firmware.booted() {
        body["Links"]["ActiveSoftwareImage"] = link(&crate::firmware::inventory_uri(active));
        body["Links"]["SoftwareImages"] = json!(crate::firmware::boot::Bank::BOTH
            .iter()
            .map(|b| link(&crate::firmware::inventory_uri(*b)))
            .collect::<Vec<_>>());
        body["Links"]["SoftwareImages@odata.count"] = json!(2);
    }
    Ok(Reply::ok(body))
}

async fn get_ethernet_interface_collection(req: Request) -> Result<Reply, RedfishError> {
    check_id(&req).await?;
    let uri = format!("{MANAGERS}/{}/EthernetInterfaces", req.param(0));
    Ok(Reply::ok(collection(
        &schemas::ETHERNET_INTERFACE_COLLECTION,
        &uri,
        "Manager Ethernet Interface Collection",
        reported_interfaces()
            .into_iter()
            .map(|i| format!("{uri}/{}", i.name)),
    )))
}

async fn get_ethernet_interface(req: Request) -> Result<Reply, RedfishError> {
    check_id(&req).await?;
    let name = req.param(1);
    let nic = reported_interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| RedfishError::not_found("EthernetInterface", name))?;
    // Redfish puts the gateway on the first address; an interface without one
    // (no default route through it) lists no IPv4 addresses rather than a
    // made-up gateway.
    let ipv4: Vec<Value> = match nic.ipv4_gateway {
        Some(gw) => nic
            .ipv4
            .iter()
            .enumerate()
            .map(|(i, (a, m))| {
                let mut v = json!({ "Address": a.to_string(), "SubnetMask": m.to_string(), "AddressOrigin": "Static" });
                if i == 0 {
                    v["Gateway"] = json!(gw.to_string());
                }
                v
            })
            .collect(),
        None => Vec::new(),
    };
    let ipv6: Vec<Value> = nic
        .ipv6
        .iter()
        .map(|(a, p)| {
            let origin = if a.segments()[0] & 0xffc0 == 0xfe80 { "LinkLocal" } else { "Static" };
            json!({ "Address": a.to_string(), "PrefixLength": p, "AddressOrigin": origin, "AddressState": "Preferred" })
        })
        .collect();
    let identity = network_identity(&req).await?;
    let speed = {
        let name = nic.name.clone();
        tokio::task::spawn_blocking(move || host::link_speed_mbps(&name))
            .await
            .unwrap_or(None)
    };
    let mut body = json!({
        "@odata.id": format!("{MANAGERS}/{}/EthernetInterfaces/{}", req.param(0), nic.name),
        "@odata.type": schemas::ETHERNET_INTERFACE.odata_type(),
        "Id": nic.name,
        "Name": format!("BMC interface {}", nic.name),
        "Description": "Network interface of the BMC",
        "InterfaceEnabled": nic.up,
        "LinkStatus": if nic.running { "LinkUp" } else { "LinkDown" },
        "HostName": identity.host_name,
        "FQDN": identity.fqdn,
        "NameServers": identity.name_servers,
        "StaticNameServers": identity.static_name_servers,
        "SpeedMbps": speed,
        "IPv4Addresses": ipv4,
        "IPv6Addresses": ipv6,
        "Status": { "State": if nic.up { "Enabled" } else { "Disabled" }, "Health": "OK" },
    });
    if let Some(mac) = &nic.mac_address {
        body["MACAddress"] = json!(mac);
        body["PermanentMACAddress"] = json!(mac);
    }
    Ok(Reply::ok(body))
}

async fn get_network_protocol(req: Request) -> Result<Reply, RedfishError> {
    check_id(&req).await?;
    let s = &req.app.service;
    let identity = network_identity(&req).await?;
    // A per-VM BMC with an endpoint of its own answers HTTPS there.
    let https_port = req
        .app
        .endpoints
        .addresses_of_system(req.param(0))
        .first()
        .map_or(s.https.port(), |a| a.port());
    let mut https = json!({ "ProtocolEnabled": true, "Port": https_port });
    // The certificate HTTPS presents: on a per-VM endpoint the endpoint's own,
    // under its manager; on the aggregate endpoint the appliance's, managed
    // through the BMC's manager.
    let certificates = match &req.endpoint {
        Some(_) => super::certificate_service::https_certificates(req.param(0)),
        None => super::certificate_service::https_certificates(BMC_ID),
    };
    https["Certificates"] = link(&certificates);
    Ok(Reply::ok(json!({
        "@odata.id": format!("{MANAGERS}/{}/NetworkProtocol", req.param(0)),
        "@odata.type": schemas::MANAGER_NETWORK_PROTOCOL.odata_type(),
        "Id": "NetworkProtocol",
        "Name": "BMC Network Protocols",
        "HostName": identity.host_name,
        "FQDN": identity.fqdn,
        "HTTPS": https,
        "HTTP": { "ProtocolEnabled": s.http_redirect.is_some(), "Port": s.http_redirect.map(|a| a.port()) },
        "SSH": { "ProtocolEnabled": false, "Port": null },
        "IPMI": { "ProtocolEnabled": false, "Port": null },
        "Status": status_ok(),
    })))
}

/// A host name label (RFC 1123): letters, digits and inner hyphens, 1 to 63.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Sets the BMC's network identity: `HostName`, `FQDN` and `StaticNameServers`.
/// Its addresses belong to the machine bmcd runs on (the kernel command line
/// `redfin.ip=` or DHCP in the image), so they are not written here.
async fn patch_ethernet_interface(req: Request) -> Result<Reply, RedfishError> {
    check_id(&req).await?;
    let name = req.param(1).to_owned();
    if !reported_interfaces().iter().any(|i| i.name == name) {
        return Err(RedfishError::not_found("EthernetInterface", &name));
    }
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let host_name = body.string("HostName")?;
    let fqdn = body.string("FQDN")?;
    let static_name_servers = match body.take("StaticNameServers") {
        None => None,
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str().map(|s| (s, s.parse::<std::net::IpAddr>())) {
                    Some((s, Ok(_))) => out.push(s.to_owned()),
                    _ => {
                        return Err(RedfishError::property_value_incorrect(
                            "StaticNameServers",
                            &item.to_string(),
                            "Each name server is an IPv4 or IPv6 address.",
                        ))
                    }
                }
            }
            Some(out)
        }
        Some(other) => {
            return Err(RedfishError::property_value_type(
                &other.to_string(),
                "StaticNameServers",
            ))
        }
    };
    for read_only in [
        "IPv4Addresses",
        "IPv4StaticAddresses",
        "IPv6Addresses",
        "IPv6StaticAddresses",
        "IPv6StaticDefaultGateways",
        "DHCPv4",
        "DHCPv6",
        "MACAddress",
        "PermanentMACAddress",
        "InterfaceEnabled",
        "SpeedMbps",
        "LinkStatus",
        "NameServers",
        "Status",
        "Id",
        "Name",
    ] {
        body.read_only(read_only).map_err(|e| {
            e.with_resolution(
                "The BMC's addresses and links belong to the machine it runs on \
                 (redfin.ip= on the image's kernel command line, or DHCP); HostName, FQDN \
                 and StaticNameServers can be set here.",
            )
        })?;
    }
    body.finish()?;
    if let Some(h) = &host_name {
        if !is_label(h) {
            return Err(RedfishError::property_value_incorrect(
                "HostName",
                h,
                "A host name is one label: letters, digits and inner hyphens, at most 63.",
            ));
        }
    }
    if let Some(f) = &fqdn {
        if f.len() > 253 || !f.split('.').all(is_label) {
            return Err(RedfishError::property_value_incorrect(
                "FQDN",
                f,
                "A fully qualified domain name is dot-separated labels, at most 253 characters.",
            ));
        }
    }
    let store = &req.app.store;
    if let Some(h) = host_name {
        store.set_setting(HOST_NAME, h).await?;
    }
    if let Some(f) = fqdn {
        store.set_setting(FQDN, f).await?;
    }
    if let Some(servers) = static_name_servers {
        store
            .set_setting(STATIC_NAME_SERVERS, serde_json::Value::from(servers).to_string())
            .await?;
    }
    get_ethernet_interface(req).await
}
