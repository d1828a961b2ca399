//! `Chassis`: one per system, the VM's virtual enclosure, with its location
//! indicator (shared with the system), and its `Power` and `Thermal`.
//!
//! A VM draws no power of its own and has no sensors: the readings here are a
//! model of the machine the VM would be, from its size and power state (see
//! [`PowerModel`]), so that tools reading a server's power and temperatures
//! get values that follow what the VM does. docs/redfish-support.md says so.

use crate::json;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::body::{Context, Fields};
use crate::error::RedfishError;
use crate::model::{ComputerSystem, PowerState};
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

use super::systems::{power_state_json, system_status};

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Chassis", Required::LOGIN, get_chassis_collection),
        route!(GET "/redfish/v1/Chassis/{id}", Required::LOGIN, get_chassis),
        route!(PATCH "/redfish/v1/Chassis/{id}", Required::CONFIGURE_COMPONENTS, patch_chassis),
        route!(GET "/redfish/v1/Chassis/{id}/Power", Required::LOGIN, get_power),
        route!(GET "/redfish/v1/Chassis/{id}/Thermal", Required::LOGIN, get_thermal),
        route!(GET "/redfish/v1/Chassis/{id}/PowerSubsystem", Required::LOGIN, get_power_subsystem),
        route!(GET "/redfish/v1/Chassis/{id}/ThermalSubsystem", Required::LOGIN, get_thermal_subsystem),
        route!(GET "/redfish/v1/Chassis/{id}/ThermalSubsystem/ThermalMetrics", Required::LOGIN, get_thermal_metrics),
        route!(GET "/redfish/v1/Chassis/{id}/EnvironmentMetrics", Required::LOGIN, get_environment_metrics),
        route!(GET "/redfish/v1/Chassis/{id}/Sensors", Required::LOGIN, get_sensor_collection),
        route!(GET "/redfish/v1/Chassis/{id}/Sensors/{sensor}", Required::LOGIN, get_sensor),
        route!(GET "/redfish/v1/Chassis/{id}/Controls", Required::LOGIN, get_control_collection),
    ]
}

const CHASSIS: &str = "/redfish/v1/Chassis";

/// The modelled draw and temperature of a VM-sized server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerModel {
    pub consumed_watts: f64,
    pub capacity_watts: f64,
    pub cpu_celsius: f64,
    pub inlet_celsius: f64,
    pub board_celsius: f64,
}

impl PowerModel {
    /// Idle draw plus a share per virtual CPU and per GiB of memory when on;
    /// the standby draw of the BMC when off. Temperatures follow the draw.
    pub fn of(s: &ComputerSystem) -> PowerModel {
        let gib = s.memory_mib as f64 / 1024.0;
        let full = 60.0 + 12.0 * f64::from(s.processor_count) + 0.5 * gib;
        let consumed = match s.power_state {
            PowerState::On | PowerState::PoweringOn | PowerState::PoweringOff => full,
            PowerState::Paused => 40.0 + 0.5 * gib,
            PowerState::Off => 8.0,
        };
        // Power supplies come in 100 W steps, with 25% headroom.
        let capacity = ((full * 1.25) / 100.0).ceil() * 100.0;
        let inlet = 22.0;
        PowerModel {
            consumed_watts: (consumed * 10.0).round() / 10.0,
            capacity_watts: capacity,
            cpu_celsius: (inlet + 45.0 * consumed / capacity).round(),
            inlet_celsius: inlet,
            board_celsius: (inlet + 12.0 * consumed / capacity).round(),
        }
    }
}

async fn get_chassis_collection(req: Request) -> Result<Reply, RedfishError> {
    let systems = req.app.hypervisor.list_systems().await?;
    Ok(Reply::ok(collection(
        &schemas::CHASSIS_COLLECTION,
        CHASSIS,
        "Chassis Collection",
        systems.into_iter().map(|s| format!("{CHASSIS}/{}", s.id)),
    )))
}

async fn system_of(req: &Request) -> Result<ComputerSystem, RedfishError> {
    let id = req.param(0);
    match req.app.hypervisor.system(id.to_owned()).await {
        Ok(s) => Ok(s),
        Err(crate::model::HypervisorError::SystemNotFound(_)) => Err(RedfishError::not_found("Chassis", id)),
        Err(e) => Err(e.into()),
    }
}

fn serial_number(s: &ComputerSystem) -> String {
    s.serial_number()
}

async fn get_chassis(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let settings = req.app.store.system_settings(s.id.clone()).await?;
    let uri = format!("{CHASSIS}/{}", s.id);
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::CHASSIS.odata_type(),
        "Id": s.id,
        "Name": format!("{} chassis", s.name),
        "ChassisType": "RackMount",
        "Manufacturer": "Redfin",
        "Model": "Virtual Chassis",
        "SerialNumber": serial_number(&s),
        "UUID": s.id,
        "AssetTag": settings.asset_tag,
        "PowerState": power_state_json(&s),
        "LocationIndicatorActive": settings.location_indicator_active,
        "IndicatorLED": if settings.location_indicator_active { "Lit" } else { "Off" },
        "Status": system_status(&s),
        "Power": link(&format!("{uri}/Power")),
        "Thermal": link(&format!("{uri}/Thermal")),
        "PowerSubsystem": link(&format!("{uri}/PowerSubsystem")),
        "ThermalSubsystem": link(&format!("{uri}/ThermalSubsystem")),
        "EnvironmentMetrics": link(&format!("{uri}/EnvironmentMetrics")),
        "Sensors": link(&format!("{uri}/Sensors")),
        "Controls": link(&format!("{uri}/Controls")),
        "Links": {
            "ComputerSystems": [link(&format!("/redfish/v1/Systems/{}", s.id))],
            "ManagedBy": [link(&format!("/redfish/v1/Managers/{}", s.id))],
        },
    })))
}

/// The chassis' location indicator and asset tag, which are the system's.
async fn patch_chassis(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let settings = super::systems::SharedSettings::take(&mut body)?;
    body.finish()?;
    settings.apply(&req.app, &s.id).await?;
    get_chassis(req).await
}

fn sensor_status(s: &ComputerSystem) -> Value {
    if s.power_state == PowerState::Off {
        json!({ "State": "StandbyOffline", "Health": "OK" })
    } else {
        status_ok()
    }
}

async fn get_power(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let m = PowerModel::of(&s);
    let uri = format!("{CHASSIS}/{}/Power", s.id);
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::POWER.odata_type(),
        "Id": "Power",
        "Name": "Power",
        "Description": "Modelled from the VM's size and power state, not measured",
        "PowerControl": [{
            "@odata.id": format!("{uri}#/PowerControl/0"),
            "MemberId": "0",
            "Name": "System power",
            "PowerConsumedWatts": m.consumed_watts,
            "PowerCapacityWatts": m.capacity_watts,
            "PhysicalContext": "Chassis",
            // A VM's draw is not capped.
            "PowerLimit": { "LimitInWatts": null, "LimitException": "NoAction" },
            "Status": status_ok(),
        }],
        "PowerSupplies": [{
            "@odata.id": format!("{uri}#/PowerSupplies/0"),
            "MemberId": "0",
            "Name": "Virtual power supply",
            "PowerSupplyType": "AC",
            "PowerCapacityWatts": m.capacity_watts,
            "LastPowerOutputWatts": m.consumed_watts,
            "Manufacturer": "Redfin",
            "Model": "Virtual PSU",
            "SerialNumber": format!("{}-PSU0", serial_number(&s)),
            "Status": status_ok(),
        }],
    })))
}

async fn get_thermal(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let m = PowerModel::of(&s);
    let uri = format!("{CHASSIS}/{}/Thermal", s.id);
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::THERMAL.odata_type(),
        "Id": "Thermal",
        "Name": "Thermal",
        "Description": "Modelled from the VM's size and power state, not measured; a VM has no fans",
        "Temperatures": [
            {
                "@odata.id": format!("{uri}#/Temperatures/0"),
                "MemberId": "0",
                "Name": "Inlet temperature",
                "SensorNumber": 1,
                "ReadingCelsius": m.inlet_celsius,
                "UpperThresholdCritical": 42,
                "PhysicalContext": "Intake",
                "Status": status_ok(),
            },
            {
                "@odata.id": format!("{uri}#/Temperatures/1"),
                "MemberId": "1",
                "Name": "CPU temperature",
                "SensorNumber": 2,
                "ReadingCelsius": if s.power_state == PowerState::Off { Value::Null } else { json!(m.cpu_celsius) },
                "UpperThresholdCritical": 95,
                "PhysicalContext": "CPU",
                "Status": sensor_status(&s),
            },
            {
                "@odata.id": format!("{uri}#/Temperatures/2"),
                "MemberId": "2",
                "Name": "System board temperature",
                "SensorNumber": 3,
                "ReadingCelsius": m.board_celsius,
                "UpperThresholdCritical": 70,
                "PhysicalContext": "SystemBoard",
                "Status": status_ok(),
            },
        ],
        "Fans": [],
        "Status": status_ok(),
    })))
}

/// One modelled sensor of a chassis.
struct Sensor {
    id: &'static str,
    name: &'static str,
    reading: Option<f64>,
    units: &'static str,
    reading_type: &'static str,
    context: &'static str,
    upper_critical: f64,
}

fn sensors(s: &ComputerSystem) -> [Sensor; 4] {
    let m = PowerModel::of(s);
    let off = s.power_state == PowerState::Off;
    [
        Sensor {
            id: "PowerConsumption",
            name: "System power",
            reading: Some(m.consumed_watts),
            units: "W",
            reading_type: "Power",
            context: "Chassis",
            upper_critical: m.capacity_watts,
        },
        Sensor {
            id: "InletTemp",
            name: "Inlet temperature",
            reading: Some(m.inlet_celsius),
            units: "Cel",
            reading_type: "Temperature",
            context: "Intake",
            upper_critical: 42.0,
        },
        Sensor {
            id: "CPUTemp",
            name: "CPU temperature",
            reading: if off { None } else { Some(m.cpu_celsius) },
            units: "Cel",
            reading_type: "Temperature",
            context: "CPU",
            upper_critical: 95.0,
        },
        Sensor {
            id: "BoardTemp",
            name: "System board temperature",
            reading: Some(m.board_celsius),
            units: "Cel",
            reading_type: "Temperature",
            context: "SystemBoard",
            upper_critical: 70.0,
        },
    ]
}

fn sensor_uri(s: &ComputerSystem, id: &str) -> String {
    format!("{CHASSIS}/{}/Sensors/{id}", s.id)
}

/// A `SensorExcerpt`: the reading and where it comes from.
fn excerpt(s: &ComputerSystem, sensor: &Sensor) -> Value {
    json!({ "Reading": sensor.reading, "DataSourceUri": sensor_uri(s, sensor.id) })
}

async fn get_power_subsystem(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let m = PowerModel::of(&s);
    Ok(Reply::ok(json!({
        "@odata.id": format!("{CHASSIS}/{}/PowerSubsystem", s.id),
        "@odata.type": schemas::POWER_SUBSYSTEM.odata_type(),
        "Id": "PowerSubsystem",
        "Name": "Power subsystem",
        "Description": "Modelled from the VM's size and power state, not measured",
        "CapacityWatts": m.capacity_watts,
        "Allocation": { "RequestedWatts": m.consumed_watts, "AllocatedWatts": m.capacity_watts },
        "Status": status_ok(),
    })))
}

async fn get_thermal_subsystem(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = format!("{CHASSIS}/{}/ThermalSubsystem", s.id);
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::THERMAL_SUBSYSTEM.odata_type(),
        "Id": "ThermalSubsystem",
        "Name": "Thermal subsystem",
        "Description": "Modelled, not measured; a VM has no fans",
        "ThermalMetrics": link(&format!("{uri}/ThermalMetrics")),
        "Status": status_ok(),
    })))
}

async fn get_thermal_metrics(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let [_, inlet, cpu, board] = sensors(&s);
    Ok(Reply::ok(json!({
        "@odata.id": format!("{CHASSIS}/{}/ThermalSubsystem/ThermalMetrics", s.id),
        "@odata.type": schemas::THERMAL_METRICS.odata_type(),
        "Id": "ThermalMetrics",
        "Name": "Thermal metrics",
        "TemperatureSummaryCelsius": {
            "Intake": excerpt(&s, &inlet),
            "Internal": excerpt(&s, &cpu),
        },
        "TemperatureReadingsCelsius": [
            { "DeviceName": inlet.name, "Reading": inlet.reading, "DataSourceUri": sensor_uri(&s, inlet.id) },
            { "DeviceName": cpu.name, "Reading": cpu.reading, "DataSourceUri": sensor_uri(&s, cpu.id) },
            { "DeviceName": board.name, "Reading": board.reading, "DataSourceUri": sensor_uri(&s, board.id) },
        ],
    })))
}

async fn get_environment_metrics(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let [power, inlet, _, _] = sensors(&s);
    Ok(Reply::ok(json!({
        "@odata.id": format!("{CHASSIS}/{}/EnvironmentMetrics", s.id),
        "@odata.type": schemas::ENVIRONMENT_METRICS.odata_type(),
        "Id": "EnvironmentMetrics",
        "Name": "Environment metrics",
        "PowerWatts": excerpt(&s, &power),
        "TemperatureCelsius": excerpt(&s, &inlet),
    })))
}

async fn get_sensor_collection(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    Ok(Reply::ok(collection(
        &schemas::SENSOR_COLLECTION,
        &format!("{CHASSIS}/{}/Sensors", s.id),
        "Sensors",
        sensors(&s).iter().map(|x| sensor_uri(&s, x.id)),
    )))
}

async fn get_sensor(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let wanted = req.param(1);
    let sensor = sensors(&s)
        .into_iter()
        .find(|x| x.id == wanted)
        .ok_or_else(|| RedfishError::not_found("Sensor", wanted))?;
    Ok(Reply::ok(json!({
        "@odata.id": sensor_uri(&s, sensor.id),
        "@odata.type": schemas::SENSOR.odata_type(),
        "Id": sensor.id,
        "Name": sensor.name,
        "Description": "Modelled from the VM's size and power state, not measured",
        "Reading": sensor.reading,
        "ReadingUnits": sensor.units,
        "ReadingType": sensor.reading_type,
        "PhysicalContext": sensor.context,
        "Thresholds": { "UpperCritical": { "Reading": sensor.upper_critical } },
        "Status": if sensor.reading.is_some() { status_ok() } else { sensor_status(&s) },
    })))
}

/// A VM's chassis has nothing to control (no power capping, no fans).
async fn get_control_collection(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    Ok(Reply::ok(collection(
        &schemas::CONTROL_COLLECTION,
        &format!("{CHASSIS}/{}/Controls", s.id),
        "Controls",
        std::iter::empty::<String>(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_follows_size_and_power_state() {
        let mut s = crate::boot::tests::system(false);
        s.processor_count = 2;
        s.memory_mib = 4096;
        s.power_state = PowerState::On;
        let on = PowerModel::of(&s);
        assert_eq!(on.consumed_watts, 60.0 + 24.0 + 2.0);
        assert_eq!(on.capacity_watts, 200.0);
        s.processor_count = 8;
        let bigger = PowerModel::of(&s);
        assert!(bigger.consumed_watts > on.consumed_watts && bigger.cpu_celsius >= on.cpu_celsius);
        s.power_state = PowerState::Off;
        let off = PowerModel::of(&s);
        assert_eq!(off.consumed_watts, 8.0);
        assert!(off.cpu_celsius < on.cpu_celsius);
    }
}
