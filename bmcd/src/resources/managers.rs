//! `Managers`: the BMC itself, its network interfaces and protocols.

use serde_json::{json, Value};

use super::{collection, link, status_ok};
use crate::error::RedfishError;
use crate::host::{self, HostInterface};
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;
use crate::time::{now_unix, rfc3339};

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Managers", Required::LOGIN, get_manager_collection),
        route!(GET "/redfish/v1/Managers/{id}", Required::LOGIN, get_manager),
        route!(GET "/redfish/v1/Managers/{id}/EthernetInterfaces", Required::LOGIN, get_ethernet_interface_collection),
        route!(GET "/redfish/v1/Managers/{id}/EthernetInterfaces/{nic}", Required::LOGIN, get_ethernet_interface),
        route!(GET "/redfish/v1/Managers/{id}/NetworkProtocol", Required::LOGIN, get_network_protocol),
    ]
}

/// The id of the BMC's own manager.
pub const BMC_ID: &str = "BMC";
const MANAGERS: &str = "/redfish/v1/Managers";

fn check_id(req: &Request) -> Result<(), RedfishError> {
    if req.param(0) == BMC_ID {
        Ok(())
    } else {
        Err(RedfishError::not_found("Manager", req.param(0)))
    }
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
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::MANAGER.odata_type(),
        "Id": s.id,
        "Name": format!("BMC of {}", s.name),
        "Description": "The BMC as this system sees it: its virtual media",
        "ManagerType": "BMC",
        "Manufacturer": "Redfin",
        "Model": "Redfin bmcd",
        "FirmwareVersion": req.app.service.firmware_version,
        "PowerState": "On",
        "Status": status_ok(),
        "DateTime": rfc3339(now_unix()),
        "DateTimeLocalOffset": "+00:00",
        "VirtualMedia": link(&format!("{uri}/VirtualMedia")),
        "Links": {
            "ManagerForServers": [link(&format!("/redfish/v1/Systems/{}", s.id))],
            "ManagerForChassis": [link(&format!("/redfish/v1/Chassis/{}", s.id))],
        },
    })))
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
        "Status": status_ok(),
        "DateTime": rfc3339(now_unix()),
        "DateTimeLocalOffset": "+00:00",
        "EthernetInterfaces": link(&format!("{uri}/EthernetInterfaces")),
        "NetworkProtocol": link(&format!("{uri}/NetworkProtocol")),
        "LogServices": link(&format!("{uri}/LogServices")),
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
    check_id(&req)?;
    let uri = format!("{MANAGERS}/{BMC_ID}/EthernetInterfaces");
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
    check_id(&req)?;
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
    let host_name = host::host_name();
    let mut body = json!({
        "@odata.id": format!("{MANAGERS}/{BMC_ID}/EthernetInterfaces/{}", nic.name),
        "@odata.type": schemas::ETHERNET_INTERFACE.odata_type(),
        "Id": nic.name,
        "Name": format!("BMC interface {}", nic.name),
        "Description": "Network interface of the BMC",
        "InterfaceEnabled": nic.up,
        "LinkStatus": if nic.running { "LinkUp" } else { "LinkDown" },
        "HostName": host_name,
        "FQDN": host_name,
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
    check_id(&req)?;
    let s = &req.app.service;
    let host_name = host::host_name();
    Ok(Reply::ok(json!({
        "@odata.id": format!("{MANAGERS}/{BMC_ID}/NetworkProtocol"),
        "@odata.type": schemas::MANAGER_NETWORK_PROTOCOL.odata_type(),
        "Id": "NetworkProtocol",
        "Name": "BMC Network Protocols",
        "HostName": host_name,
        "FQDN": host_name,
        "HTTPS": {
            "ProtocolEnabled": true,
            "Port": s.https.port(),
            "Certificates": link(&super::certificate_service::https_certificates()),
        },
        "HTTP": { "ProtocolEnabled": s.http_redirect.is_some(), "Port": s.http_redirect.map(|a| a.port()) },
        "SSH": { "ProtocolEnabled": false },
        "IPMI": { "ProtocolEnabled": false },
        "Status": status_ok(),
    })))
}
