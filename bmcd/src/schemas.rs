//! The DMTF schemas bmcd's resources conform to: the one table behind
//! `$metadata`, `/redfish/v1/JsonSchemas` and the `Link: rel=describedby` header.
//! The binary carries only this table; the schema documents themselves are
//! referenced at their DMTF publication URIs.

/// One schema family (`ComputerSystem`) at the version bmcd emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    pub family: &'static str,
    /// `v1_27_0`, or `""` for collections and unversioned schemas.
    pub version: &'static str,
}

impl Schema {
    /// `#ComputerSystem.v1_27_0.ComputerSystem`.
    pub fn odata_type(&self) -> String {
        if self.version.is_empty() {
            format!("#{0}.{0}", self.family)
        } else {
            format!("#{0}.{1}.{0}", self.family, self.version)
        }
    }

    /// The CSDL file that defines it.
    pub fn csdl_file(&self) -> String {
        format!("{}_v1.xml", self.family)
    }

    pub fn csdl_uri(&self) -> String {
        format!("http://redfish.dmtf.org/schemas/v1/{}", self.csdl_file())
    }

    pub fn json_uri(&self) -> String {
        if self.version.is_empty() {
            format!("http://redfish.dmtf.org/schemas/v1/{}.json", self.family)
        } else {
            format!(
                "http://redfish.dmtf.org/schemas/v1/{}.{}.json",
                self.family, self.version
            )
        }
    }
}

macro_rules! schemas {
    ($($name:ident = $family:literal $version:literal;)*) => {
        $(pub const $name: Schema = Schema { family: $family, version: $version };)*
        /// Every schema whose resources bmcd serves.
        pub const ALL: &[Schema] = &[$($name),*];
    };
}

schemas! {
    SERVICE_ROOT = "ServiceRoot" "v1_20_0";
    COMPUTER_SYSTEM_COLLECTION = "ComputerSystemCollection" "";
    COMPUTER_SYSTEM = "ComputerSystem" "v1_27_0";
    ACTION_INFO = "ActionInfo" "v1_5_0";
    BOOT_OPTION_COLLECTION = "BootOptionCollection" "";
    BOOT_OPTION = "BootOption" "v1_0_6";
    BIOS = "Bios" "v1_2_3";
    SECURE_BOOT = "SecureBoot" "v1_1_2";
    ETHERNET_INTERFACE_COLLECTION = "EthernetInterfaceCollection" "";
    ETHERNET_INTERFACE = "EthernetInterface" "v1_12_4";
    PROCESSOR_COLLECTION = "ProcessorCollection" "";
    PROCESSOR = "Processor" "v1_22_0";
    MEMORY_COLLECTION = "MemoryCollection" "";
    MEMORY = "Memory" "v1_23_0";
    SIMPLE_STORAGE_COLLECTION = "SimpleStorageCollection" "";
    SIMPLE_STORAGE = "SimpleStorage" "v1_3_2";
    STORAGE_COLLECTION = "StorageCollection" "";
    STORAGE = "Storage" "v1_21_0";
    DRIVE = "Drive" "v1_22_0";
    VOLUME_COLLECTION = "VolumeCollection" "";
    VOLUME = "Volume" "v1_10_2";
    CHASSIS_COLLECTION = "ChassisCollection" "";
    CHASSIS = "Chassis" "v1_28_0";
    POWER = "Power" "v1_7_3";
    THERMAL = "Thermal" "v1_7_3";
    POWER_SUBSYSTEM = "PowerSubsystem" "v1_1_3";
    THERMAL_SUBSYSTEM = "ThermalSubsystem" "v1_5_0";
    THERMAL_METRICS = "ThermalMetrics" "v1_3_2";
    ENVIRONMENT_METRICS = "EnvironmentMetrics" "v1_5_0";
    SENSOR_COLLECTION = "SensorCollection" "";
    SENSOR = "Sensor" "v1_12_0";
    CONTROL_COLLECTION = "ControlCollection" "";
    MANAGER_COLLECTION = "ManagerCollection" "";
    MANAGER = "Manager" "v1_24_0";
    MANAGER_NETWORK_PROTOCOL = "ManagerNetworkProtocol" "v1_12_0";
    TASK_SERVICE = "TaskService" "v1_3_0";
    AGGREGATION_SERVICE = "AggregationService" "v1_0_3";
    AGGREGATION_SOURCE_COLLECTION = "AggregationSourceCollection" "";
    AGGREGATION_SOURCE = "AggregationSource" "v1_5_0";
    LOG_SERVICE_COLLECTION = "LogServiceCollection" "";
    LOG_SERVICE = "LogService" "v1_9_0";
    LOG_ENTRY_COLLECTION = "LogEntryCollection" "";
    LOG_ENTRY = "LogEntry" "v1_21_0";
    EVENT_SERVICE = "EventService" "v1_12_0";
    EVENT_DESTINATION_COLLECTION = "EventDestinationCollection" "";
    EVENT_DESTINATION = "EventDestination" "v1_16_0";
    TASK_COLLECTION = "TaskCollection" "";
    TASK = "Task" "v1_7_4";
    VIRTUAL_MEDIA_COLLECTION = "VirtualMediaCollection" "";
    VIRTUAL_MEDIA = "VirtualMedia" "v1_6_5";
    CERTIFICATE_COLLECTION = "CertificateCollection" "";
    CERTIFICATE = "Certificate" "v1_11_0";
    CERTIFICATE_SERVICE = "CertificateService" "v1_0_8";
    CERTIFICATE_LOCATIONS = "CertificateLocations" "v1_0_4";
    SESSION_SERVICE = "SessionService" "v1_2_0";
    SESSION_COLLECTION = "SessionCollection" "";
    SESSION = "Session" "v1_8_0";
    ACCOUNT_SERVICE = "AccountService" "v1_18_1";
    MANAGER_ACCOUNT_COLLECTION = "ManagerAccountCollection" "";
    MANAGER_ACCOUNT = "ManagerAccount" "v1_14_1";
    ROLE_COLLECTION = "RoleCollection" "";
    ROLE = "Role" "v1_3_3";
    MESSAGE_REGISTRY_FILE_COLLECTION = "MessageRegistryFileCollection" "";
    MESSAGE_REGISTRY_FILE = "MessageRegistryFile" "v1_1_5";
    MESSAGE_REGISTRY = "MessageRegistry" "v1_7_0";
    JSON_SCHEMA_FILE_COLLECTION = "JsonSchemaFileCollection" "";
    JSON_SCHEMA_FILE = "JsonSchemaFile" "v1_1_5";
    UPDATE_SERVICE = "UpdateService" "v1_17_0";
    SOFTWARE_INVENTORY_COLLECTION = "SoftwareInventoryCollection" "";
    SOFTWARE_INVENTORY = "SoftwareInventory" "v1_13_0";
}

/// Schemas referenced by the ones above (types of their properties).
pub const SUPPORTING: &[&str] = &[
    "Resource",
    "Message",
    "RedfishExtensions",
    "Privileges",
    "IPAddresses",
    "Settings",
    "AttributeRegistry",
];

pub fn by_family(family: &str) -> Option<&'static Schema> {
    ALL.iter().find(|s| s.family == family)
}

/// `$metadata`: an EDMX document that references each schema at its DMTF URI.
pub fn metadata_document() -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n",
    );
    for s in ALL {
        out.push_str(&format!("  <edmx:Reference Uri=\"{}\">\n", s.csdl_uri()));
        out.push_str(&format!("    <edmx:Include Namespace=\"{}\"/>\n", s.family));
        if !s.version.is_empty() {
            out.push_str(&format!(
                "    <edmx:Include Namespace=\"{}.{}\"/>\n",
                s.family, s.version
            ));
        }
        out.push_str("  </edmx:Reference>\n");
    }
    for family in SUPPORTING {
        out.push_str(&format!(
            "  <edmx:Reference Uri=\"http://redfish.dmtf.org/schemas/v1/{family}_v1.xml\">\n    <edmx:Include Namespace=\"{family}\"/>\n"
        ));
        if *family == "RedfishExtensions" {
            out.push_str("    <edmx:Include Namespace=\"RedfishExtensions.v1_0_0\" Alias=\"Redfish\"/>\n");
        }
        out.push_str("  </edmx:Reference>\n");
    }
    out.push_str(&format!(
        "  <edmx:DataServices>\n    <Schema xmlns=\"http://docs.oasis-open.org/odata/ns/edm\" Namespace=\"Service\">\n      \
         <EntityContainer Name=\"Service\" Extends=\"ServiceRoot.{}.ServiceContainer\"/>\n    </Schema>\n  \
         </edmx:DataServices>\n</edmx:Edmx>\n",
        SERVICE_ROOT.version
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_well_formed_and_names_every_schema() {
        let doc = metadata_document();
        let parsed = roxmltree::Document::parse(&doc).expect("well-formed XML");
        let includes: Vec<&str> = parsed
            .descendants()
            .filter(|n| n.has_tag_name("Include"))
            .filter_map(|n| n.attribute("Namespace"))
            .collect();
        for s in ALL {
            assert!(includes.contains(&s.family), "{}", s.family);
        }
        assert!(includes.contains(&"ComputerSystem.v1_27_0"));
    }

    #[test]
    fn odata_types_have_the_dmtf_shape() {
        assert_eq!(
            COMPUTER_SYSTEM.odata_type(),
            "#ComputerSystem.v1_27_0.ComputerSystem"
        );
        assert_eq!(
            COMPUTER_SYSTEM_COLLECTION.odata_type(),
            "#ComputerSystemCollection.ComputerSystemCollection"
        );
        assert_eq!(by_family("Drive"), Some(&DRIVE));
    }
}
