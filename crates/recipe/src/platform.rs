//! The reference's platform, which chooses the goreleaser target when no
//! target is given: `GOOS`, `GOARCH` and the arch level (`GOAMD64`, `GOARM`,
//! …) from its build info, cross-checked with the file format and machine its
//! header states.
//!
//! Choosing the target this way is safe even without inference from the
//! reference (`Inputs::reference`): a wrong target cannot make a false
//! "reproduced", since the rebuilt binary is compared with the reference bit
//! for bit and a binary of another platform differs in every section. The
//! choice is still checked, so that a wrong one is an input error that names
//! the targets rather than a build that is sure to differ.

use bstr::ByteSlice;

use super::goreleaser::Target;
use goinfo::{BuildInfo, Machine};

/// Why the reference's platform cannot choose a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlatformUnknown(pub String);

/// What the reference says about its platform.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReferencePlatform {
    /// `GOOS` from the build info.
    pub goos: Option<String>,
    /// `GOARCH` from the build info.
    pub goarch: Option<String>,
    /// The arch level variable's value from the build info, when recorded.
    pub level: Option<String>,
    /// What the file's header states, when it could be read.
    pub header: Option<Machine>,
}

impl ReferencePlatform {
    /// The platform of a reference with build info `bi` and header `header`.
    pub fn new(bi: &BuildInfo, header: Option<Machine>) -> ReferencePlatform {
        let get = |key: &str| {
            bi.settings.iter().find(|s| s.key.as_bytes() == key.as_bytes()).and_then(|s| s.value.to_str().ok())
        };
        let goos = get("GOOS").map(str::to_string);
        let goarch = get("GOARCH").map(str::to_string);
        let level = goarch
            .as_ref()
            .and_then(|a| Target { goos: String::new(), goarch: a.clone(), level: None }.level_var())
            .and_then(get)
            .filter(|l| !l.is_empty())
            .map(str::to_string);
        ReferencePlatform { goos, goarch, level, header }
    }

    /// What the platform was read from, for notes and errors.
    pub fn describe(&self) -> String {
        let mut words = Vec::new();
        if let Some(os) = &self.goos {
            words.push(format!("GOOS={os}"));
        }
        if let Some(arch) = &self.goarch {
            words.push(format!("GOARCH={arch}"));
            let var = Target { goos: String::new(), goarch: arch.clone(), level: None }.level_var();
            if let (Some(var), Some(level)) = (var, &self.level) {
                words.push(format!("{var}={level}"));
            }
        }
        let info = if words.is_empty() { "no GOOS/GOARCH".to_string() } else { words.join(" ") };
        let header = self.header.map_or_else(|| "header not read".to_string(), |m| m.describe());
        format!("build info {info}; {header}")
    }

    /// The target the reference was built for, or why it cannot be told:
    /// the build info does not record `GOOS`/`GOARCH`, or the header's format
    /// or machine says otherwise.
    pub fn target(&self) -> Result<Target, PlatformUnknown> {
        self.check().map_err(PlatformUnknown)
    }

    fn check(&self) -> Result<Target, String> {
        let (Some(goos), Some(goarch)) = (&self.goos, &self.goarch) else {
            return Err(format!("the reference's build info records no GOOS/GOARCH ({})", self.describe()));
        };
        let Some(header) = self.header else {
            return Err(format!("the reference's header could not be read to confirm {goos}/{goarch}"));
        };
        if !header.fits_goos(goos) {
            return Err(format!(
                "the reference's build info says GOOS={goos} but its {} is not a {goos} format",
                header.describe()
            ));
        }
        match header.goarch {
            Some(a) if a == goarch => {}
            Some(a) => {
                return Err(format!(
                    "the reference's build info says GOARCH={goarch} but its header's machine is {a} ({})",
                    header.describe()
                ))
            }
            None => {
                return Err(format!(
                    "the reference's header machine is not one reprove maps, so GOARCH={goarch} is not confirmed"
                ))
            }
        }
        Ok(Target { goos: goos.clone(), goarch: goarch.clone(), level: self.level.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bi(settings: &[(&str, &str)]) -> BuildInfo {
        BuildInfo {
            settings: settings
                .iter()
                .map(|(k, v)| goinfo::BuildSetting { key: (*k).into(), value: (*v).into() })
                .collect(),
            ..BuildInfo::default()
        }
    }

    fn elf(goarch: &'static str) -> Option<Machine> {
        Some(Machine { format: goinfo::Format::Elf, goarch: Some(goarch) })
    }

    #[test]
    fn build_info_and_header_must_agree() {
        let info = bi(&[("GOOS", "linux"), ("GOARCH", "amd64"), ("GOAMD64", "v3")]);
        let t = ReferencePlatform::new(&info, elf("amd64")).target().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_string(), "linux_amd64_v3");
        let e = ReferencePlatform::new(&info, elf("arm64")).target().map(|_| ()).unwrap_err().0;
        assert!(e.contains("GOARCH=amd64") && e.contains("arm64"), "{e}");
        let pe = Some(Machine { format: goinfo::Format::Pe, goarch: Some("amd64") });
        let e = ReferencePlatform::new(&info, pe).target().map(|_| ()).unwrap_err().0;
        assert!(e.contains("GOOS=linux"), "{e}");
        assert!(ReferencePlatform::new(&info, None).target().is_err());
        assert!(ReferencePlatform::new(&bi(&[]), elf("amd64")).target().is_err());
        let arm = bi(&[("GOOS", "linux"), ("GOARCH", "arm64")]);
        let t = ReferencePlatform::new(&arm, elf("arm64")).target().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.to_string(), t.level), ("linux_arm64".to_string(), None));
    }
}
