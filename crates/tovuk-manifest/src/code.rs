//! The stable diagnostic codes of `tovuk check`; scripts match on these strings.

use std::fmt;

use serde::Serialize;

/// A diagnostic code. The serialized form (`as_str`) is part of the JSON
/// contract: codes are only ever added, never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    // The file itself.
    ManifestMissing,
    ManifestEmpty,
    ManifestTooLarge,
    ManifestNotUtf8,
    TomlSyntax,
    // Shape of tables and values.
    UnknownKey,
    WrongType,
    MissingField,
    InvalidValue,
    NotAllowed,
    // Capabilities.
    UnknownCapability,
    CapabilityMissing,
    CapabilityUnused,
    DuplicateCapability,
    // Uniqueness.
    DuplicateBinding,
    DuplicateRoute,
    DuplicateDomain,
    DuplicateProcess,
    BindingCollision,
    // Release-mode hygiene.
    HealthMissing,
    DevSetting,
    SecretFileTracked,
    GeneratedOutputTracked,
    PathTooDeep,
    // Detection (no tovuk.toml).
    DetectionLimit,
    DotenvLeftOut,
}

impl Code {
    /// Every code, in documentation order.
    pub const ALL: [Code; 26] = [
        Code::ManifestMissing,
        Code::ManifestEmpty,
        Code::ManifestTooLarge,
        Code::ManifestNotUtf8,
        Code::TomlSyntax,
        Code::UnknownKey,
        Code::WrongType,
        Code::MissingField,
        Code::InvalidValue,
        Code::NotAllowed,
        Code::UnknownCapability,
        Code::CapabilityMissing,
        Code::CapabilityUnused,
        Code::DuplicateCapability,
        Code::DuplicateBinding,
        Code::DuplicateRoute,
        Code::DuplicateDomain,
        Code::DuplicateProcess,
        Code::BindingCollision,
        Code::HealthMissing,
        Code::DevSetting,
        Code::SecretFileTracked,
        Code::GeneratedOutputTracked,
        Code::PathTooDeep,
        Code::DetectionLimit,
        Code::DotenvLeftOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::ManifestMissing => "manifest_missing",
            Code::ManifestEmpty => "manifest_empty",
            Code::ManifestTooLarge => "manifest_too_large",
            Code::ManifestNotUtf8 => "manifest_not_utf8",
            Code::TomlSyntax => "toml_syntax",
            Code::UnknownKey => "unknown_key",
            Code::WrongType => "wrong_type",
            Code::MissingField => "missing_field",
            Code::InvalidValue => "invalid_value",
            Code::NotAllowed => "not_allowed",
            Code::UnknownCapability => "unknown_capability",
            Code::CapabilityMissing => "capability_missing",
            Code::CapabilityUnused => "capability_unused",
            Code::DuplicateCapability => "duplicate_capability",
            Code::DuplicateBinding => "duplicate_binding",
            Code::DuplicateRoute => "duplicate_route",
            Code::DuplicateDomain => "duplicate_domain",
            Code::DuplicateProcess => "duplicate_process",
            Code::BindingCollision => "binding_collision",
            Code::HealthMissing => "health_missing",
            Code::DevSetting => "dev_setting",
            Code::SecretFileTracked => "secret_file_tracked",
            Code::GeneratedOutputTracked => "generated_output_tracked",
            Code::PathTooDeep => "path_too_deep",
            Code::DetectionLimit => "detection_limit",
            Code::DotenvLeftOut => "dotenv_left_out",
        }
    }

    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|code| code.as_str() == name)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
