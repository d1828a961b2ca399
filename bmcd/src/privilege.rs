//! DMTF privileges and the three predefined roles.

/// A privilege from the DMTF Privilege Registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Login,
    ConfigureManager,
    ConfigureUsers,
    ConfigureSelf,
    ConfigureComponents,
}

impl Privilege {
    pub const ALL: [Privilege; 5] = [
        Privilege::Login,
        Privilege::ConfigureManager,
        Privilege::ConfigureUsers,
        Privilege::ConfigureSelf,
        Privilege::ConfigureComponents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Login => "Login",
            Privilege::ConfigureManager => "ConfigureManager",
            Privilege::ConfigureUsers => "ConfigureUsers",
            Privilege::ConfigureSelf => "ConfigureSelf",
            Privilege::ConfigureComponents => "ConfigureComponents",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrivilegeSet(u8);

impl PrivilegeSet {
    pub const fn of(privileges: &[Privilege]) -> PrivilegeSet {
        let mut bits = 0;
        let mut i = 0;
        while i < privileges.len() {
            bits |= privileges[i].bit();
            i += 1;
        }
        PrivilegeSet(bits)
    }

    pub fn contains(self, p: Privilege) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn union(self, other: PrivilegeSet) -> PrivilegeSet {
        PrivilegeSet(self.0 | other.0)
    }

    pub fn without(self, p: Privilege) -> PrivilegeSet {
        PrivilegeSet(self.0 & !p.bit())
    }

    pub fn iter(self) -> impl Iterator<Item = Privilege> {
        Privilege::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

/// What a route demands of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    /// No authentication (service root, `/redfish`, odata, `$metadata`, login).
    Open,
    /// Authenticated, holding at least one of these privileges.
    AnyOf(PrivilegeSet),
}

impl Required {
    pub const LOGIN: Required = Required::AnyOf(PrivilegeSet::of(&[Privilege::Login]));
    pub const CONFIGURE_COMPONENTS: Required =
        Required::AnyOf(PrivilegeSet::of(&[Privilege::ConfigureComponents]));
    pub const CONFIGURE_MANAGER: Required = Required::AnyOf(PrivilegeSet::of(&[Privilege::ConfigureManager]));
    pub const CONFIGURE_USERS: Required = Required::AnyOf(PrivilegeSet::of(&[Privilege::ConfigureUsers]));
    /// Allowed to users managers and, for their own resource, to the user itself;
    /// the handler checks the ownership.
    pub const CONFIGURE_USERS_OR_SELF: Required = Required::AnyOf(PrivilegeSet::of(&[
        Privilege::ConfigureUsers,
        Privilege::ConfigureSelf,
    ]));
    /// Session management: a manager, or the session's own user.
    pub const CONFIGURE_MANAGER_OR_SELF: Required = Required::AnyOf(PrivilegeSet::of(&[
        Privilege::ConfigureManager,
        Privilege::ConfigureSelf,
    ]));

    pub fn allows(self, held: PrivilegeSet) -> bool {
        match self {
            Required::Open => true,
            Required::AnyOf(any) => any.0 & held.0 != 0,
        }
    }
}

/// A predefined role (`Role.RoleId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Administrator,
    Operator,
    ReadOnly,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Administrator, Role::Operator, Role::ReadOnly];

    pub fn id(self) -> &'static str {
        match self {
            Role::Administrator => "Administrator",
            Role::Operator => "Operator",
            Role::ReadOnly => "ReadOnly",
        }
    }

    pub fn parse(id: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.id() == id)
    }

    pub fn privileges(self) -> PrivilegeSet {
        use Privilege::*;
        match self {
            Role::Administrator => PrivilegeSet::of(&[
                Login,
                ConfigureManager,
                ConfigureUsers,
                ConfigureSelf,
                ConfigureComponents,
            ]),
            Role::Operator => PrivilegeSet::of(&[Login, ConfigureSelf, ConfigureComponents]),
            Role::ReadOnly => PrivilegeSet::of(&[Login, ConfigureSelf]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_hold_the_dmtf_privileges() {
        assert!(Required::CONFIGURE_COMPONENTS.allows(Role::Operator.privileges()));
        assert!(!Required::CONFIGURE_COMPONENTS.allows(Role::ReadOnly.privileges()));
        assert!(!Required::CONFIGURE_USERS.allows(Role::Operator.privileges()));
        assert!(Required::CONFIGURE_USERS_OR_SELF.allows(Role::ReadOnly.privileges()));
        for role in Role::ALL {
            assert!(Required::LOGIN.allows(role.privileges()));
            assert_eq!(Role::parse(role.id()), Some(role));
        }
        assert_eq!(Role::Administrator.privileges().iter().count(), 5);
        assert!(!Required::LOGIN.allows(PrivilegeSet::default()));
        assert!(Required::Open.allows(PrivilegeSet::default()));
    }
}
