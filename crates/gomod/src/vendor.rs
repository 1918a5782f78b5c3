//! `vendor/modules.txt`, read as the go command reads it (`modload.readVendorList`).
//!
//! Module lines are `# path version [=> replacement [version]]`, followed by
//! `## explicit; go 1.21` annotations and the packages vendored from that
//! module. Lines Go does not understand are skipped, as Go skips them.

use super::module::{check_import_path, ModuleVersion};
use super::semver;

/// One module of modules.txt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendoredModule {
    /// The module; an empty version for a wildcard replacement line.
    pub module: ModuleVersion,
    /// Its replacement, if any.
    pub replacement: Option<ModuleVersion>,
    /// `## explicit`: required by the main module's go.mod.
    pub explicit: bool,
    /// `## go 1.xx`: the module's go version.
    pub go_version: String,
    /// The packages vendored from it.
    pub packages: Vec<String>,
}

/// Parses modules.txt. Modules appear in file order; a module line seen twice merges.
pub fn parse_modules_txt(data: &[u8]) -> Vec<VendoredModule> {
    let text = String::from_utf8_lossy(data);
    let mut mods: Vec<VendoredModule> = Vec::new();
    let mut cur: Option<usize> = None;
    for line in text.split('\n') {
        if line.starts_with("# ") {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 3 {
                continue;
            }
            let (m, rest) = if semver::is_valid(f[2]) {
                (ModuleVersion::new(f[1], f[2]), &f[3..])
            } else if f[2] == "=>" {
                (ModuleVersion::new(f[1], ""), &f[2..])
            } else {
                cur = None;
                continue;
            };
            let i = match mods.iter().position(|v| v.module == m) {
                Some(i) => i,
                None => {
                    mods.push(VendoredModule { module: m, ..Default::default() });
                    mods.len() - 1
                }
            };
            if rest.len() >= 2 && rest[0] == "=>" {
                if rest.len() == 2 {
                    mods[i].replacement = Some(ModuleVersion::new(rest[1], ""));
                } else if rest.len() == 3 && semver::is_valid(rest[2]) {
                    mods[i].replacement = Some(ModuleVersion::new(rest[1], rest[2]));
                }
            }
            cur = Some(i);
            continue;
        }
        let Some(i) = cur else { continue };
        if let Some(annotations) = line.strip_prefix("## ") {
            for entry in annotations.split(';').map(str::trim) {
                if entry == "explicit" {
                    mods[i].explicit = true;
                }
                if let Some(v) = entry.strip_prefix("go ") {
                    mods[i].go_version = v.to_string();
                }
            }
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 1 && check_import_path(f[0]).is_ok() {
            mods[i].packages.push(f[0].to_string());
        }
    }
    mods
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_modules_txt() {
        let data = b"# github.com/pkg/errors v0.9.1\n## explicit\ngithub.com/pkg/errors\n# example.com/a v1.0.0 => ./a\n## explicit; go 1.17\nexample.com/a/b\n# example.com/w => ../w\n";
        let m = parse_modules_txt(data);
        assert_eq!(m.len(), 3);
        assert!(m[0].explicit);
        assert_eq!(m[0].packages, vec!["github.com/pkg/errors"]);
        assert_eq!(m[1].replacement, Some(ModuleVersion::new("./a", "")));
        assert_eq!(m[1].go_version, "1.17");
        assert_eq!(m[2].module.version, "");
    }
}
