//! How the CLI spells the settings that library messages name
//! (`stdx::setting`): as its flags. Installed once, before any command runs.

use stdx::setting::Setting;

/// The flag (with its command when it is not `verify`'s) for `s`.
pub(crate) fn flag(s: Setting) -> &'static str {
    match s {
        Setting::AllowDirty => "--allow-dirty",
        Setting::Toolchain => "--toolchain",
        Setting::GoVersion => "--go-version",
        Setting::Env => "--env",
        Setting::Reference => "--reference",
        Setting::Tag => "--tag",
        Setting::Build => "--build",
        Setting::Target => "--target",
        Setting::Buildmode => "--buildmode",
        Setting::Ldflags => "--ldflags",
        Setting::Package => "--package",
        Setting::Pgo => "--pgo",
        Setting::Source => "reprove audit --source",
        Setting::Buildvcs => "--buildvcs",
        Setting::Keep => "--keep",
        Setting::ToolchainBase => "reprove toolchain build --base",
        Setting::MaxReferrers => "reprove attest fetch --max-referrers",
        Setting::MaxAttestationBytes => "reprove attest fetch --max-bytes",
        Setting::RegistryConnectTimeout => "--registry-connect-timeout",
        Setting::RegistryIdleTimeout => "--registry-idle-timeout",
        Setting::RegistryTimeout => "--registry-timeout",
    }
}

/// The flag for `s` as `reprove audit` takes it: `--ldflags` per binary (the rebuild's
/// message names only the setting; the audit's own messages add the value's form).
pub(crate) fn audit_flag(s: Setting) -> &'static str {
    match s {
        Setting::Ldflags => "--ldflags BINARY=FLAGS",
        other => flag(other),
    }
}

/// How messages name the settings for `command`.
pub(crate) enum Spelling {
    /// As the flags of `reprove verify` and the others.
    Flags,
    /// As `reprove audit`'s flags.
    Audit,
    /// As the ids: the keys of reprove.toml and of the service's job API (`reprove serve`).
    Ids,
}

/// Makes library messages name the settings as `spelling` says.
pub(crate) fn install(spelling: Spelling) {
    // A second call (none is made) would keep the first names.
    let _ = match spelling {
        Spelling::Flags => stdx::setting::install(flag),
        Spelling::Audit => stdx::setting::install(audit_flag),
        Spelling::Ids => true,
    };
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// Every setting is spelled as a flag that its command has: `verify`'s,
    /// unless the spelling names another command.
    #[test]
    fn every_setting_is_a_flag_of_its_command() {
        let cli = crate::cmd::Cli::command();
        for &s in Setting::ALL {
            let words: Vec<&str> = flag(s).split_whitespace().collect();
            let Some((long, path)) = words.split_last() else { panic!("{s:?}: empty") };
            let path: Vec<&str> = match path {
                [] => vec!["verify"],
                ["reprove", rest @ ..] => rest.to_vec(),
                other => panic!("{s:?}: {other:?} is not a command"),
            };
            let mut cmd = &cli;
            for name in &path {
                cmd = cmd.find_subcommand(name).unwrap_or_else(|| panic!("{s:?}: no command {path:?}"));
            }
            let long = long.strip_prefix("--").unwrap_or_else(|| panic!("{s:?}: {long} is not a long flag"));
            assert!(
                cmd.get_arguments().any(|a| a.get_long() == Some(long)),
                "{s:?}: reprove {} has no --{long}",
                path.join(" ")
            );
        }
    }

    /// The audit's own spellings are flags of `reprove audit`.
    #[test]
    fn the_audit_spellings_are_audit_flags() {
        let cli = crate::cmd::Cli::command();
        let audit = cli.find_subcommand("audit").unwrap_or_else(|| panic!("no audit command"));
        let own: Vec<Setting> = Setting::ALL.iter().copied().filter(|&s| audit_flag(s) != flag(s)).collect();
        assert_eq!(own, [Setting::Ldflags]);
        for s in own {
            let first = audit_flag(s).split_whitespace().next().unwrap_or_default();
            let long = first.strip_prefix("--").unwrap_or_else(|| panic!("{s:?}: {first}"));
            assert!(audit.get_arguments().any(|a| a.get_long() == Some(long)), "{s:?}: reprove audit has no {first}");
        }
    }
}
