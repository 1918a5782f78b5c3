//! The `reprove verify` report: the versioned document ([`v1`], described by
//! `schemas/report.schema.json`) and its renderings for people (text),
//! CI summaries (Markdown) and test dashboards (JUnit XML).
//!
//! The report carries everything a SLSA provenance of the rebuild needs
//! (subject, source URI and commit, recipe, toolchain image and digest,
//! go.mod/go.sum digests, every module with its h1, start and finish times, an
//! invocation id), so `reprove attest provenance REPORT.json` can be written
//! from the document alone. It derives `Deserialize` for that reason.
//!
//! [`audit`] is the `reprove audit` document: one image's verdict over its Go
//! binaries, embedding the verify report of each rebuild, with text, Markdown
//! and HTML renderings.
#![deny(missing_docs)]

use std::fmt::Write as _;

/// Declares a closed set of names as an enum serialized as the names
/// themselves, with `as_str`, `Display` and the list
/// of every variant; each string is written once, here.
macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $variant:ident => $text:tt,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$doc])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The name as the document carries it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

/// Version 1 of the document.
pub mod v1 {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    /// The schema version this module writes.
    pub const SCHEMA_VERSION: u32 = 1;

    names! {
        /// The outcome of a run.
        Verdict {
            /// The rebuilt binary is bit-identical to the reference.
            Reproduced => "reproduced",
            /// It differs (the causes say how).
            NotReproduced => "not-reproduced",
            /// There is no verdict: a step failed (the failure says which and why).
            Error => "error",
        }
    }

    names! {
        /// How a failure counts: which exit code it gets.
        Class {
            /// The user's input (exit 2).
            Input => "input",
            /// The machine, network, registry or sandbox (exit 3).
            Infrastructure => "infrastructure",
            /// Content that does not match go.sum, or a source server whose identity is not
            /// vouched for (ssh host key, TLS certificate): exit 3, nothing was built from it.
            Security => "security",
        }
    }

    names! {
        /// A step of the pipeline, in order.
        Step {
            /// Reading the reference.
            Reference => "reference",
            /// Exporting the source.
            Source => "source",
            /// Resolving the recipe and choosing the toolchain.
            Recipe => "recipe",
            /// Checking go.sum against go.mod.
            GoSum => "go-sum",
            /// Fetching and verifying modules.
            Modules => "modules",
            /// Pulling the toolchain.
            Toolchain => "toolchain",
            /// Building in the sandbox.
            Build => "build",
            /// Comparing with the reference.
            Compare => "compare",
        }
    }

    names! {
        /// Why two Go binaries differ: the cause codes of `reprove diff` and of the
        /// report, which `compare` ranks and re-exports. The declaration order is
        /// the significance order that ranks causes of equal confidence: the first
        /// explains the most. `docs/causes.md` says what each means, the evidence
        /// behind each confidence, and what to do about it.
        CauseCode {
            /// A file was changed after it was linked: its bytes no longer match the content ID
            /// of its own build ID (a self-check says so), or both files carry the same build ID
            /// and still differ.
            ModifiedAfterLink => "modified-after-link",
            /// One file is a truncated copy of the other.
            Truncated => "truncated",
            /// The reference records a main module sum (`mod PATH VERSION h1:…`, as
            /// `go install PATH@VERSION` leaves it) that is not the published version's
            /// (the checksum database's, or the zip's): it claims a source it was not built from.
            MainModuleSum => "main-module-sum",
            /// Only one of the binaries has readable Go build info.
            NoBuildInfo => "no-build-info",
            /// Built by different Go toolchain versions.
            GoVersion => "go-version",
            /// Built for a different GOOS or GOARCH.
            GoosGoarch => "goos-goarch",
            /// Built for a different architecture level: GOAMD64, GOARM, GO386, GOARM64, ...
            ArchLevel => "arch-level",
            /// Built with a different GOEXPERIMENT.
            Goexperiment => "goexperiment",
            /// Built with a different GOFIPS140 module.
            Fips140 => "fips140",
            /// Built with a different `-buildmode`.
            Buildmode => "buildmode",
            /// Built with a different compiler (`-compiler`).
            Compiler => "compiler",
            /// Built with a different CGO_ENABLED or CGO_* flags.
            Cgo => "cgo",
            /// Built with a different `-race`, `-msan`, `-asan` or `-cover`.
            Instrumentation => "instrumentation",
            /// Built with different `-tags`.
            Tags => "tags",
            /// Built with different `-gcflags`.
            Gcflags => "gcflags",
            /// Built with different `-asmflags`.
            Asmflags => "asmflags",
            /// Built with a different profile-guided optimization profile (`-pgo`).
            Pgo => "pgo",
            /// One binary is stripped of symbols or DWARF (`-ldflags=-s -w`, `strip`).
            Stripped => "stripped",
            /// Built with different `-ldflags`, recorded or inferred from `-X` variables.
            Ldflags => "ldflags",
            /// One binary was built with `-trimpath`, the other without.
            Trimpath => "trimpath",
            /// A different DefaultGODEBUG (the main module's `go` line or `godebug` directives).
            Godebug => "godebug",
            /// A different main package or main module path.
            MainPath => "main-path",
            /// One binary is stamped with version control information, the other is not.
            Buildvcs => "buildvcs",
            /// Built from different VCS revisions.
            VcsRevision => "vcs-revision",
            /// Built from a working tree with and without uncommitted changes.
            VcsModified => "vcs-modified",
            /// Built from commits with different commit times.
            VcsTime => "vcs-time",
            /// A different main module version (Go ≥1.24 stamps it from VCS tags).
            MainVersion => "main-version",
            /// A dependency added, removed, or at a different version.
            DependencyVersion => "dependency-version",
            /// A dependency replaced by something else.
            DependencyReplace => "dependency-replace",
            /// A dependency at the same version with a different or missing sum (`-mod=vendor`).
            DependencySum => "dependency-sum",
            /// Another recorded build setting differs.
            BuildSetting => "build-setting",
            /// Absolute build paths present in one binary but not the other.
            EmbeddedPath => "embedded-path",
            /// Everything is identical except the build ID bytes.
            BuildIdOnly => "build-id-only",
            /// The difference could not be explained.
            Unknown => "unknown",
        }
    }

    names! {
        /// What the content-ID self-check found about the reference: whether its bytes
        /// still hash to the content ID its own Go build ID records (as
        /// `reprove buildinfo --check`).
        SelfCheck {
            /// Nothing changed since the link wrote it.
            Intact => "intact",
            /// Changed after it was linked (edited, stripped, signed, appended to).
            ModifiedAfterLink => "modified-after-link",
            /// No content ID to check (`-ldflags=-buildid=`, or not built by `go build`).
            NoBuildId => "no-build-id",
            /// Packed by an executable packer (UPX or similar).
            Packed => "packed",
        }
    }

    names! {
        /// How a cause was established.
        Confidence {
            /// Read directly (the build info), proven by masking the build IDs, or by
            /// a self-check the other file passes.
            Certain => "certain",
            /// Inferred from strong evidence: symbols, sections, paths, build IDs.
            Likely => "likely",
            /// Inferred from weak evidence: differing strings, or nothing at all.
            Possible => "possible",
        }
    }

    names! {
        /// The stable code of a failure: the step's own, or the
        /// `modfetch::failure` code of a fetch or build failure (the same
        /// strings; this crate does not depend on modfetch, the pipeline maps
        /// them and its tests check that every one has its variant here).
        Code {
            /// The reference cannot be read (file or image).
            ReferenceUnreadable => "reference-unreadable",
            /// The repository could not be cloned or fetched.
            CloneFailed => "clone-failed",
            /// The source server refused the credentials.
            CloneAuthFailed => "clone-auth-failed",
            /// The ssh server's host key is not known.
            SshHostKeyUnknown => "ssh-host-key-unknown",
            /// The ssh server's host key does not match the known one.
            SshHostKeyRefused => "ssh-host-key-refused",
            /// The source server's TLS certificate is not trusted.
            TlsCertificateUntrusted => "tls-certificate-untrusted",
            /// The revision does not resolve to a commit.
            UnknownRevision => "unknown-revision",
            /// The commit's tree has an entry that cannot be exported safely.
            UnsafeTree => "unsafe-tree",
            /// The commit's tree objects are malformed.
            MalformedTree => "malformed-tree",
            /// A file of the commit is larger than reprove reads.
            BlobTooLarge => "blob-too-large",
            /// Another failure of the source step.
            Source => "source",
            /// The working tree has uncommitted changes.
            DirtyTree => "dirty-tree",
            /// go.mod or go.sum cannot be used.
            GoMod => "go-mod",
            /// The reference was built in a go.work workspace the rebuild would not use.
            GoWorkspace => "go-workspace",
            /// The recipe inputs are invalid.
            Recipe => "recipe",
            /// The commit's recipe files set values that run code, not allowed.
            RecipeExecRefused => "recipe-exec-refused",
            /// Recipe fields nothing determined.
            RecipeUndetermined => "recipe-undetermined",
            /// The module download could not start.
            ModuleDownload => "module-download",
            /// Modules could not be fetched, for no classified reason.
            Modules => "modules",
            /// The toolchain image is not pinned by digest.
            ToolchainNotPinned => "toolchain-not-pinned",
            /// The toolchain image's content does not match its digest.
            ToolchainDigestMismatch => "toolchain-digest-mismatch",
            /// Another failure to pull or use the toolchain image.
            Toolchain => "toolchain",
            /// The toolchain image has no Go installation.
            ToolchainWithoutGo => "toolchain-without-go",
            /// The image's Go version is not the recipe's.
            GoVersionMismatch => "go-version-mismatch",
            /// VCS stamping needs git inside the toolchain image.
            VcsNeedsGit => "vcs-needs-git",
            /// No `--toolchain` and no `reprove.lock`.
            NoToolchain => "no-toolchain",
            /// The commit's `reprove.lock` pins no image for the recipe's Go version.
            LockMissingVersion => "lock-missing-version",
            /// The commit's `reprove.lock` cannot give the toolchain.
            Lock => "lock",
            /// The sandbox could not run the build.
            Sandbox => "sandbox",
            /// `go build` failed, or wrote no binary.
            BuildFailed => "build-failed",
            /// Something in the sandbox replaced what `go build` wrote.
            OutputTampered => "output-tampered",
            /// The `--keep` directory has content.
            KeepNotEmpty => "keep-not-empty",
            /// The `--keep` path is a symlink or not a directory.
            KeepNotDirectory => "keep-not-directory",
            /// The run was interrupted.
            Interrupted => "interrupted",
            /// A filesystem operation failed.
            Io => "io",
            /// `modfetch` `git-auth`: git could not authenticate.
            GitAuth => "git-auth",
            /// `modfetch` `git-host-key`: ssh refused the server's host key.
            GitHostKey => "git-host-key",
            /// `modfetch` `git-repo-not-found`: the repository does not exist.
            GitRepoNotFound => "git-repo-not-found",
            /// `modfetch` `git-network`: git could not reach the server.
            GitNetwork => "git-network",
            /// `modfetch` `git-resources`: git could not start processes or allocate memory.
            GitResources => "git-resources",
            /// `modfetch` `git-exit-128`: git exited with 128 for a reason not recognised.
            GitExit128 => "git-exit-128",
            /// `modfetch` `not-found`: the proxy does not have the module version.
            NotFound => "not-found",
            /// `modfetch` `auth`: a server answered 401 or 403.
            Auth => "auth",
            /// `modfetch` `tls`: the TLS handshake or certificate verification failed.
            Tls => "tls",
            /// `modfetch` `dns`: a host name did not resolve.
            Dns => "dns",
            /// `modfetch` `timeout`: no answer in time.
            Timeout => "timeout",
            /// `modfetch` `connect`: the TCP connection failed.
            Connect => "connect",
            /// `modfetch` `http-status`: the server answered with an error status.
            HttpStatus => "http-status",
            /// `modfetch` `bad-response`: the answer was not what the protocol says.
            BadResponse => "bad-response",
            /// `modfetch` `checksum-mismatch`: content differs from go.sum or the checksum database.
            ChecksumMismatch => "checksum-mismatch",
            /// `modfetch` `missing-go-sum`: go.sum has no line for a module that needs one.
            MissingGoSum => "missing-go-sum",
            /// `modfetch` `toolchain-mismatch`: the toolchain does not satisfy go.mod.
            ToolchainMismatch => "toolchain-mismatch",
            /// `modfetch` `sumdb`: the checksum database could not be used or did not verify.
            SumDb => "sumdb",
            /// `modfetch` `lookup-disabled`: fetching is disabled.
            LookupDisabled => "lookup-disabled",
            /// `modfetch` `unknown`: nothing recognised.
            Unknown => "unknown",
        }
    }

    /// The whole document.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Report {
        /// Always [`SCHEMA_VERSION`].
        pub schema_version: u32,
        /// A random id of this run (hex).
        pub invocation_id: String,
        /// `reproduced`, `not-reproduced` or `error`.
        pub verdict: Verdict,
        /// One line for a person.
        pub summary: String,
        /// When the run started (`YYYY-MM-DDTHH:MM:SSZ`).
        pub started_on: String,
        /// When the run finished.
        pub finished_on: String,
        /// The artifact the verdict is about: the reference.
        pub subject: Subject,
        /// What went in, with digests.
        pub inputs: Inputs,
        /// How the rebuild was done, with where each value came from.
        pub recipe: Recipe,
        /// The rebuilt binary, when the build succeeded.
        pub rebuilt: Option<Artifact>,
        /// Why the binaries differ (not-reproduced only), most significant first.
        pub causes: Vec<Cause>,
        /// The modules the rebuilt (else the reference) binary was built from.
        pub modules: Vec<Module>,
        /// Disagreements between go.sum, the reference's and the rebuilt binary's module sums.
        pub module_findings: Vec<ModuleFinding>,
        /// Wall time of each step, in order.
        pub timings: Vec<Timing>,
        /// Why there is no verdict (`error` only).
        pub error: Option<Failure>,
        /// Things a reader should know that do not change the verdict.
        pub warnings: Vec<String>,
        /// Versions of the tools involved.
        pub tools: Tools,
    }

    /// An artifact by name and digest.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Subject {
        /// The file name (the recipe's output name).
        pub name: String,
        /// SHA-256, hex.
        pub sha256: String,
    }

    /// The rebuilt binary.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Artifact {
        /// SHA-256, hex.
        pub sha256: String,
        /// Size in bytes.
        pub size: u64,
        /// Where it was kept (`--keep`), else `null`.
        pub path: Option<String>,
    }

    /// The inputs.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Inputs {
        /// The source.
        pub source: Source,
        /// go.mod at the commit (the file `-modfile` names when the recipe sets it).
        pub go_mod: Option<FileDigest>,
        /// go.sum at the commit (with `-modfile`, its `.sum`); `null` when the module has none.
        pub go_sum: Option<FileDigest>,
        /// The reference binary.
        pub reference: Reference,
        /// The toolchain image.
        pub toolchain: Toolchain,
        /// The go.work workspace the build used; absent when it used none
        /// (no go.work at the commit, or `GOWORK=off`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub workspace: Option<Workspace>,
    }

    /// The go.work workspace of a build: its files, with digests.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Workspace {
        /// go.work.
        pub go_work: FileDigest,
        /// go.work.sum; `null` when there is none.
        pub go_work_sum: Option<FileDigest>,
        /// The modules it uses, in go.work order (the main module included).
        pub modules: Vec<WorkspaceModule>,
    }

    /// One module of a workspace.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct WorkspaceModule {
        /// The module path.
        pub path: String,
        /// Its directory in the source tree, as go.work's `use` names it, cleaned (`.` for the root).
        pub dir: String,
        /// Its go.mod.
        pub go_mod: FileDigest,
        /// Its go.sum; `null` when there is none.
        pub go_sum: Option<FileDigest>,
    }

    /// The source.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Source {
        /// The repository: a clone URL, or `file://` and a local path.
        pub uri: String,
        /// The revision as given.
        pub rev: String,
        /// The full commit id; `null` when it could not be resolved.
        pub commit: Option<String>,
        /// The commit time (`vcs.time` format).
        pub commit_time: Option<String>,
        /// Tags pointing at the commit.
        pub tags: Vec<String>,
        /// Whether the local working tree had uncommitted changes (`--allow-dirty`);
        /// the rebuild used the commit's tree regardless.
        pub dirty: bool,
        /// The changed paths, when dirty.
        pub dirty_paths: Vec<String>,
        /// Submodules of the tree: their content is not part of the rebuild.
        pub submodules: Vec<Submodule>,
        /// Symlinks of the tree whose target leaves it.
        pub escaping_symlinks: Vec<String>,
        /// The released module version the source is (`uri` is then
        /// `pkg:golang/PATH@VERSION` and `rev` the version); absent for a Git source.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub module: Option<ModuleSource>,
    }

    /// A released module version as the source: its zip fetched through GOPROXY
    /// and checked before the rebuild.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ModuleSource {
        /// The module path.
        pub path: String,
        /// The version.
        pub version: String,
        /// The `h1:` sum the reference's build info records for its main module; `null`
        /// when there is no reference build info.
        pub recorded_sum: Option<String>,
        /// The `h1:` sum of the zip that was fetched and extracted; `null` when none was.
        pub sum: Option<String>,
        /// SHA-256 of that zip, hex.
        pub zip_sha256: Option<String>,
        /// Where the zip came from: a GOPROXY URL (credentials removed), or `cache`.
        pub zip_from: Option<String>,
        /// What the sum was checked against, in order: `checksum database NAME`,
        /// `reference build info`; the go.mod (`.mod`) too, against the checksum
        /// database or the zip's own go.mod.
        pub checked_against: Vec<String>,
    }

    /// A submodule.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Submodule {
        /// Its path in the tree.
        pub path: String,
        /// The commit it pins.
        pub commit: String,
    }

    /// A file by path and digest.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct FileDigest {
        /// Its path in the source tree.
        pub path: String,
        /// SHA-256, hex.
        pub sha256: String,
    }

    /// The reference binary.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Reference {
        /// The file, as given (a path, `oci://…`, or the `https://` URL a `reprove serve`
        /// job downloaded it from, `sha256` being what was downloaded); `null` with
        /// `--reference-digest`.
        pub path: Option<String>,
        /// SHA-256, hex.
        pub sha256: String,
        /// Size in bytes, when the file was given.
        pub size: Option<u64>,
        /// The Go version from its build info, when read.
        pub go_version: Option<String>,
        /// The main module path its build info records; absent without build info (or
        /// outside module mode).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub main_module: Option<String>,
        /// The image the file was read from (`--reference oci://IMAGE@sha256:…#/path`);
        /// absent for a file or a digest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<ReferenceImage>,
        /// The reference checked against its own content ID, when the compare step
        /// read it; absent otherwise (digest only, or no verdict).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub self_check: Option<SelfCheck>,
    }

    /// The image a reference was read from, by digest: the digest as given and the
    /// platform manifest the file was read from (docs/attestation-subjects.md).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ReferenceImage {
        /// `registry/repository`, without tag or digest.
        pub name: String,
        /// The tag, when the reference named one (it is not what was read: the digest is).
        pub tag: Option<String>,
        /// The digest as given (`sha256:…`): an image index's or a platform manifest's.
        pub digest: String,
        /// The digest of the platform image manifest whose layers held the file.
        pub manifest_digest: String,
        /// The image index's digest when the digest given was an index (then equal to
        /// `digest`); `null` when it was a platform manifest.
        pub index_digest: Option<String>,
        /// The platform of the manifest read (`linux/amd64`).
        pub platform: String,
        /// The file's path in the image.
        pub path: String,
    }

    /// The toolchain image.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Toolchain {
        /// The image reference pinned by digest, as given.
        pub image: String,
        /// The pinned digest (`sha256:…`).
        pub digest: String,
        /// The platform manifest's digest, when pulled.
        pub manifest_digest: Option<String>,
        /// The Go version the image contains (`$GOROOT/VERSION`), when pulled.
        pub go_version: Option<String>,
        /// Where the image came from: `flag` (`--toolchain`) or `reprove.lock`
        /// (the commit's lock file, for the recipe's Go version).
        #[serde(default)]
        pub from: Option<String>,
    }

    /// The recipe as built.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Recipe {
        /// The package given to `go build`.
        pub package: String,
        /// GOOS.
        pub goos: String,
        /// GOARCH.
        pub goarch: String,
        /// The architecture level variable and value (`GOAMD64=v1`…), when set.
        pub arch_level: Option<String>,
        /// The recipe's environment (CGO_ENABLED, GOAMD64, GOEXPERIMENT…).
        pub env: BTreeMap<String, String>,
        /// `-trimpath`.
        pub trimpath: bool,
        /// `-ldflags`.
        pub ldflags: Option<String>,
        /// `-gcflags`.
        pub gcflags: Option<String>,
        /// `-tags`.
        pub tags: Vec<String>,
        /// `-buildmode`, when not the default.
        pub buildmode: Option<String>,
        /// `-buildvcs`.
        pub buildvcs: String,
        /// The output file name.
        pub output_name: String,
        /// The Go version required.
        pub go_version: Option<String>,
        /// The full `go` command line run in the sandbox (after `go`).
        pub go_args: Vec<String>,
        /// The full environment the pipeline gave the build (besides the image's).
        pub build_env: BTreeMap<String, String>,
        /// Where each field came from: `flag`, `reference:<setting>`, `default`, `toolchain`…
        pub origins: BTreeMap<String, String>,
        /// Fields nothing determined, and how to supply them.
        pub undetermined: Vec<Undetermined>,
        /// Values two inputs set differently, with the one used.
        #[serde(default)]
        pub conflicts: Vec<Conflict>,
        /// What an input set that reprove left out on purpose, and why.
        #[serde(default)]
        pub notes: Vec<String>,
        /// Values that make the build run or read what they name (`-toolexec`,
        /// `-exec`, `-overlay`, `-modfile` in GOFLAGS), with their origin.
        #[serde(default)]
        pub exec: Vec<ExecFlag>,
    }

    /// A recipe value that makes the build run or read what it names.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ExecFlag {
        /// The go flag (`-toolexec`, `-exec`, `-overlay`, `-modfile`).
        pub flag: String,
        /// Its value.
        pub value: String,
        /// Where it came from (an origin as in `origins`).
        pub origin: String,
    }

    /// A recipe value two inputs set differently.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Conflict {
        /// The field, e.g. `ldflags` or `env.GOAMD64`.
        pub field: String,
        /// The value used.
        pub used: String,
        /// Where the value used came from (an origin as in `origins`).
        pub used_origin: String,
        /// The value set aside.
        pub overridden: String,
        /// Where it came from.
        pub overridden_origin: String,
    }

    /// A field nothing determined.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Undetermined {
        /// The field.
        pub field: String,
        /// Why, and how to supply it.
        pub reason: String,
    }

    /// One cause of a difference (the `reprove diff` cause: its code, confidence, explanation and evidence).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Cause {
        /// The stable code, e.g. `ldflags`, `build-id-only`.
        pub code: CauseCode,
        /// How sure the cause is.
        pub confidence: Confidence,
        /// One line for a person.
        pub explanation: String,
        /// What it was concluded from (a = reference, b = rebuilt).
        pub evidence: Vec<Evidence>,
    }

    /// One observation.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Evidence {
        /// Where it was observed.
        pub source: String,
        /// What.
        pub name: String,
        /// In the reference.
        pub reference: Option<String>,
        /// In the rebuilt binary.
        pub rebuilt: Option<String>,
    }

    /// A module dependency.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Module {
        /// The module path.
        pub path: String,
        /// The version.
        pub version: String,
        /// The `h1:` hash of its content; empty when unknown.
        pub h1: String,
        /// `path@version` or a directory it was replaced by, when replaced.
        pub replace: Option<String>,
    }

    /// One disagreement about a module.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ModuleFinding {
        /// `reference-vs-go-sum`, `rebuilt-vs-go-sum`, `reference-vs-rebuilt`,
        /// `missing-in-go-sum`, `only-in-reference`, `only-in-rebuilt`.
        pub kind: String,
        /// The module path.
        pub path: String,
        /// The version (the reference's when they differ).
        pub version: String,
        /// What go.sum says, when it was consulted.
        pub go_sum: Option<String>,
        /// What the reference binary records.
        pub reference: Option<String>,
        /// What the rebuilt binary records.
        pub rebuilt: Option<String>,
        /// One line for a person.
        pub message: String,
    }

    /// A step's wall time.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Timing {
        /// `source`, `go-sum`, `modules`, `toolchain`, `build`, `compare`.
        pub step: Step,
        /// Milliseconds.
        pub ms: u64,
    }

    /// Why there is no verdict.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Failure {
        /// The step that failed.
        pub step: Step,
        /// `input` (exit 2) or `infrastructure` (exit 3); `security` (exit 3) for
        /// content that does not match go.sum.
        pub class: Class,
        /// A stable code: a `modfetch::failure` code where one applies
        /// (`checksum-mismatch`, `missing-go-sum`…), else the step's own
        /// (`go-version-mismatch`, `dirty-tree`, `build-failed`…).
        pub code: Code,
        /// What happened.
        pub message: String,
        /// What to do about it.
        pub remediation: Option<String>,
        /// The modules concerned, as `path@version`.
        pub modules: Vec<String>,
    }

    /// Tool versions.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Tools {
        /// reprove's version.
        pub reprove: String,
        /// The Go version inside the toolchain, when known.
        pub go: Option<String>,
        /// The sandbox runtime that ran the build, when it ran.
        pub runtime: Option<String>,
    }
}

pub mod audit;

fn ms_total(r: &v1::Report) -> u64 {
    r.timings.iter().map(|t| t.ms).sum()
}

pub(crate) fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// One line about a recipe value that makes the build run or read what it names.
pub fn exec_warning(e: &v1::ExecFlag) -> String {
    let what = match e.flag.as_str() {
        "-toolexec" => "runs every compiler and linker invocation through",
        "-exec" => "runs the programs go run and go test build through",
        "-overlay" => "replaces source files with the files listed in",
        "-modfile" => "takes the module's requirements and sums from",
        _ => "uses",
    };
    format!(
        "{}={} (from {}): the build {what} {:?}; the verdict holds for the source together with it",
        e.flag, e.value, e.origin, e.value
    )
}

/// How many pieces of evidence a rendering shows per cause (the JSON has them all).
pub(crate) const EVIDENCE_SHOWN: usize = 5;

/// `URI @ commit` (the revision as given when it did not resolve).
pub(crate) fn source_line(src: &v1::Source) -> String {
    match &src.module {
        Some(m) => format!("{} (module zip{})", src.uri, m.sum.as_deref().map(|h| format!(" {h}")).unwrap_or_default()),
        None => format!("{} @ {}", src.uri, src.commit.as_deref().unwrap_or(&src.rev)),
    }
}

/// `IMAGE (GO VERSION[, from ORIGIN])`.
pub(crate) fn toolchain_line(t: &v1::Toolchain) -> String {
    format!(
        "{} ({}{})",
        t.image,
        t.go_version.as_deref().unwrap_or("Go version unknown"),
        match t.from.as_deref() {
            Some("flag") | None => String::new(),
            Some(f) => format!(", from {f}"),
        }
    )
}

/// `CODE (CONFIDENCE): EXPLANATION`.
pub(crate) fn cause_line(c: &v1::Cause) -> String {
    format!("{} ({}): {}", c.code, c.confidence, c.explanation)
}

/// `SOURCE NAME: reference X / rebuilt Y`.
pub(crate) fn evidence_line(e: &v1::Evidence) -> String {
    format!(
        "{} {}: reference {} / rebuilt {}",
        e.source,
        e.name,
        e.reference.as_deref().unwrap_or("-"),
        e.rebuilt.as_deref().unwrap_or("-")
    )
}

/// `[CLASS/CODE] in step STEP: MESSAGE`.
pub(crate) fn failure_line(e: &v1::Failure) -> String {
    format!("[{}/{}] in step {}: {}", e.class, e.code, e.step, e.message)
}

/// The report as text for a terminal.
pub fn render_text(r: &v1::Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "verdict: {}", r.verdict.as_str().to_uppercase());
    let _ = writeln!(s, "  {}", r.summary);
    let src = &r.inputs.source;
    let _ = writeln!(s, "source:     {}", source_line(src));
    if let Some(m) = &src.module {
        if !m.checked_against.is_empty() {
            let _ = writeln!(s, "            checked against: {}", m.checked_against.join("; "));
        }
    }
    if src.dirty {
        let _ = writeln!(
            s,
            "            the working tree had uncommitted changes ({}): {}; the rebuild used the commit",
            stdx::setting::Setting::AllowDirty,
            src.dirty_paths.join(", ")
        );
    }
    let reference = r.inputs.reference.path.as_deref().unwrap_or("(digest only)");
    let _ = writeln!(s, "reference:  {reference} sha256:{}", r.inputs.reference.sha256);
    if let Some(check) = r.inputs.reference.self_check {
        let _ = writeln!(s, "            self-check: {check}");
    }
    if let Some(b) = &r.rebuilt {
        let _ = writeln!(s, "rebuilt:    sha256:{} ({} bytes)", b.sha256, b.size);
    }
    let _ = writeln!(s, "toolchain:  {}", toolchain_line(&r.inputs.toolchain));
    let _ = writeln!(s, "build:      go {}", r.recipe.go_args.join(" "));
    if !r.recipe.origins.is_empty() {
        let origins: Vec<String> = r.recipe.origins.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "recipe:     {}", origins.join(", "));
    }
    for c in &r.recipe.conflicts {
        let _ = writeln!(
            s,
            "conflict:   {}: {:?} from {} over {:?} from {}",
            c.field, c.used, c.used_origin, c.overridden, c.overridden_origin
        );
    }
    for n in &r.recipe.notes {
        let _ = writeln!(s, "note:       {n}");
    }
    for e in &r.recipe.exec {
        let _ = writeln!(s, "WARNING:    {}", exec_warning(e));
    }
    for c in &r.causes {
        let _ = writeln!(s, "cause:      {}", cause_line(c));
        for e in c.evidence.iter().take(EVIDENCE_SHOWN) {
            let _ = writeln!(s, "              {}", evidence_line(e));
        }
    }
    for f in &r.module_findings {
        let _ = writeln!(s, "module:     [{}] {}", f.kind, f.message);
    }
    for u in &r.recipe.undetermined {
        let _ = writeln!(s, "undetermined: {}: {}", u.field, u.reason);
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "error:      {}", failure_line(e));
        if let Some(rem) = &e.remediation {
            let _ = writeln!(s, "remedy:     {rem}");
        }
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning:    {w}");
    }
    let timings: Vec<String> = r.timings.iter().map(|t| format!("{} {:.1}s", t.step, t.ms as f64 / 1000.0)).collect();
    let _ = writeln!(s, "timings:    {} (total {:.1}s)", timings.join(", "), ms_total(r) as f64 / 1000.0);
    s
}

/// The report as Markdown, for CI job summaries.
pub fn render_markdown(r: &v1::Report) -> String {
    let mut s = String::new();
    let icon = match r.verdict {
        v1::Verdict::Reproduced => "✅",
        v1::Verdict::NotReproduced => "❌",
        v1::Verdict::Error => "⚠️",
    };
    let _ = writeln!(s, "### {icon} reprove verify: `{}` {}\n", r.subject.name, r.verdict);
    let _ = writeln!(s, "{}\n", r.summary);
    let _ = writeln!(s, "| | |\n|---|---|");
    let src = &r.inputs.source;
    match &src.module {
        Some(m) => {
            let sum = m.sum.as_deref().unwrap_or("not fetched");
            let _ = writeln!(
                s,
                "| source | `{}` (module zip `{sum}`; checked against {}) |",
                src.uri,
                m.checked_against.join("; ")
            );
        }
        None => {
            let _ = writeln!(s, "| source | `{}` @ `{}` |", src.uri, src.commit.as_deref().unwrap_or(&src.rev));
        }
    }
    let _ = writeln!(s, "| reference | `sha256:{}` |", r.inputs.reference.sha256);
    if let Some(check) = r.inputs.reference.self_check {
        let _ = writeln!(s, "| reference self-check | `{check}` |");
    }
    if let Some(b) = &r.rebuilt {
        let _ = writeln!(s, "| rebuilt | `sha256:{}` |", b.sha256);
    }
    let _ = writeln!(s, "| toolchain | `{}` |", r.inputs.toolchain.image);
    if let Some(f) = r.inputs.toolchain.from.as_deref().filter(|f| *f != "flag") {
        let _ = writeln!(s, "| toolchain from | `{f}` |");
    }
    let _ = writeln!(s, "| build | `go {}` |", r.recipe.go_args.join(" ").replace('|', "\\|"));
    if !r.recipe.origins.is_empty() {
        let origins: Vec<String> = r.recipe.origins.iter().map(|(k, v)| format!("{k}: `{v}`")).collect();
        let _ = writeln!(s, "| recipe origins | {} |", origins.join(", ").replace('|', "\\|"));
    }
    if !r.recipe.exec.is_empty() {
        let _ = writeln!(s, "\n**Warning: the recipe runs or reads what it names**\n");
        for e in &r.recipe.exec {
            let _ = writeln!(s, "- ⚠️ {}", exec_warning(e).replace('|', "\\|"));
        }
    }
    if !r.recipe.conflicts.is_empty() || !r.recipe.notes.is_empty() {
        let _ = writeln!(s, "\n**Recipe**\n");
        for c in &r.recipe.conflicts {
            let _ = writeln!(
                s,
                "- conflict `{}`: `{}` from {} over `{}` from {}",
                c.field, c.used, c.used_origin, c.overridden, c.overridden_origin
            );
        }
        for n in &r.recipe.notes {
            let _ = writeln!(s, "- note: {n}");
        }
    }
    if !r.causes.is_empty() {
        let _ = writeln!(s, "\n**Causes**\n");
        for c in &r.causes {
            let _ = writeln!(s, "- `{}` ({}): {}", c.code, c.confidence, c.explanation);
        }
    }
    if !r.module_findings.is_empty() {
        let _ = writeln!(s, "\n**Module findings**\n");
        for f in &r.module_findings {
            let _ = writeln!(s, "- `{}`: {}", f.kind, f.message);
        }
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "\n**Error** (`{}`, `{}`, step `{}`): {}", e.class, e.code, e.step, e.message);
    }
    let timings: Vec<String> = r.timings.iter().map(|t| format!("{} {:.1}s", t.step, t.ms as f64 / 1000.0)).collect();
    let _ = writeln!(s, "\n<sub>{} · reprove {}</sub>", timings.join(" · "), r.tools.reprove);
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The report as a JUnit XML document: one test case, failed when not
/// reproduced, in error when there is no verdict.
pub fn render_junit(r: &v1::Report) -> String {
    let secs = ms_total(r) as f64 / 1000.0;
    let (failures, errors) = match r.verdict {
        v1::Verdict::Reproduced => (0, 0),
        v1::Verdict::NotReproduced => (1, 0),
        v1::Verdict::Error => (0, 1),
    };
    let name = xml_escape(&format!("verify {}", r.subject.name));
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<testsuites name="reprove" tests="1" failures="{failures}" errors="{errors}" time="{secs:.3}">"#
    );
    let _ = writeln!(
        s,
        r#"  <testsuite name="reprove verify" tests="1" failures="{failures}" errors="{errors}" time="{secs:.3}" timestamp="{}">"#,
        xml_escape(&r.started_on)
    );
    let _ = writeln!(s, r#"    <testcase classname="reprove.verify" name="{name}" time="{secs:.3}">"#);
    let body = xml_escape(&render_text(r));
    match r.verdict {
        v1::Verdict::Reproduced => {}
        v1::Verdict::NotReproduced => {
            let codes: Vec<&str> = r.causes.iter().map(|c| c.code.as_str()).collect();
            let _ = writeln!(
                s,
                r#"      <failure type="not-reproduced" message="{}">{body}</failure>"#,
                xml_escape(&format!("not reproduced: {}", codes.join(", ")))
            );
        }
        v1::Verdict::Error => {
            let code = r.error.as_ref().map(|e| e.code.as_str()).unwrap_or("error");
            let _ = writeln!(
                s,
                r#"      <error type="{}" message="{}">{body}</error>"#,
                xml_escape(code),
                xml_escape(&r.summary)
            );
        }
    }
    let _ = writeln!(
        s,
        "      <system-out>{}</system-out>",
        xml_escape(&format!("reference sha256:{}", short(&r.inputs.reference.sha256)))
    );
    let _ = writeln!(s, "    </testcase>\n  </testsuite>\n</testsuites>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recipe value that runs code is named in the text and Markdown outputs, with its origin.
    #[test]
    fn text_and_markdown_warn_of_recipe_values_that_run_code() {
        let mut r: v1::Report =
            match serde_json::from_str(include_str!("../../../tests/fixtures/report/not-reproduced.json")) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            };
        assert!(!render_text(&r).contains("WARNING"));
        assert!(!render_markdown(&r).contains("⚠️ -toolexec"));
        r.recipe.exec = vec![v1::ExecFlag {
            flag: "-toolexec".into(),
            value: "/src/tools/wrap".into(),
            origin: "recipe-file:reprove.toml".into(),
        }];
        let text = render_text(&r);
        assert!(
            text.contains(
                "WARNING:    -toolexec=/src/tools/wrap (from recipe-file:reprove.toml): the build runs every \
                           compiler and linker invocation through \"/src/tools/wrap\""
            ),
            "{text}"
        );
        let md = render_markdown(&r);
        assert!(md.contains("- ⚠️ -toolexec=/src/tools/wrap (from recipe-file:reprove.toml)"), "{md}");
    }

    /// The reference's self-check is shown when the compare step ran it, and only then.
    #[test]
    fn text_and_markdown_show_the_reference_self_check() {
        let mut r: v1::Report =
            match serde_json::from_str(include_str!("../../../tests/fixtures/report/not-reproduced.json")) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            };
        assert!(!render_text(&r).contains("self-check"));
        assert!(!render_markdown(&r).contains("self-check"));
        r.inputs.reference.self_check = Some(v1::SelfCheck::ModifiedAfterLink);
        let text = render_text(&r);
        assert!(text.contains("\n            self-check: modified-after-link\n"), "{text}");
        assert!(render_markdown(&r).contains("| reference self-check | `modified-after-link` |"));
        let json = match serde_json::to_value(&r) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(json["inputs"]["reference"]["selfCheck"], "modified-after-link");
    }

    fn fixtures() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/report");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => panic!("{}: {e}", dir.display()),
        };
        let mut out: Vec<(String, String)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| match std::fs::read_to_string(&p) {
                Ok(text) => (p.display().to_string(), text),
                Err(e) => panic!("{}: {e}", p.display()),
            })
            .collect();
        out.sort();
        out
    }

    /// Whether `outer` holds every value of `inner`, in objects at any depth
    /// (and possibly more keys).
    fn includes(outer: &serde_json::Value, inner: &serde_json::Value) -> bool {
        match (outer, inner) {
            (serde_json::Value::Object(o), serde_json::Value::Object(i)) => {
                i.iter().all(|(k, v)| o.get(k).is_some_and(|ov| includes(ov, v)))
            }
            (serde_json::Value::Array(o), serde_json::Value::Array(i)) => {
                o.len() == i.len() && o.iter().zip(i).all(|(o, i)| includes(o, i))
            }
            _ => outer == inner,
        }
    }

    /// The typed fields change nothing in the document: every committed report
    /// reads into [`v1::Report`] and writes back the same JSON. The reports
    /// `reprove verify --json` wrote come back byte for byte; the hand-written
    /// `not-reproduced.json` (laid out by hand, without the fields that have
    /// defaults) with every value it has.
    #[test]
    fn committed_reports_round_trip() {
        let all = fixtures();
        assert!(all.len() > 1, "{all:?}");
        for (path, text) in all {
            let typed: v1::Report = match serde_json::from_str(&text) {
                Ok(r) => r,
                Err(e) => panic!("{path}: {e}"),
            };
            let written = match serde_json::to_string_pretty(&typed) {
                Ok(t) => t + "\n",
                Err(e) => panic!("{path}: {e}"),
            };
            let value = |t: &str| match serde_json::from_str::<serde_json::Value>(t) {
                Ok(v) => v,
                Err(e) => panic!("{path}: {e}"),
            };
            if path.ends_with("/not-reproduced.json") {
                assert!(includes(&value(&written), &value(&text)), "{path}: {written}");
            } else {
                assert_eq!(written, text, "{path}");
            }
        }
    }

    /// The schema's lists of verdicts, classes, steps, cause codes and confidences are the enums' names.
    #[test]
    fn enums_match_the_schema() {
        let schema: serde_json::Value = match serde_json::from_str(include_str!("../../../schemas/report.schema.json"))
        {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let listed = |pointer: &str| -> Vec<String> {
            match schema.pointer(pointer).and_then(|v| v.as_array()) {
                Some(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                None => panic!("{pointer}: not in the schema"),
            }
        };
        let names = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let verdicts: Vec<&str> = v1::Verdict::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(listed("/properties/verdict/enum"), names(&verdicts));
        let classes: Vec<&str> = v1::Class::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(listed("/$defs/failure/properties/class/enum"), names(&classes));
        let steps: Vec<&str> = v1::Step::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(listed("/$defs/timing/properties/step/enum"), names(&steps));
        let causes: Vec<&str> = v1::CauseCode::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(listed("/$defs/cause/properties/code/enum"), names(&causes));
        let checks: Vec<&str> = v1::SelfCheck::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(listed("/$defs/reference/properties/selfCheck/enum"), names(&checks));
        let confidences: Vec<&str> = v1::Confidence::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(listed("/$defs/cause/properties/confidence/enum"), names(&confidences));
    }

    /// Serde writes and reads each name as `as_str` says, and no two codes share one.
    #[test]
    fn names_serialize_as_their_strings() {
        fn check<T>(all: &[T], as_str: fn(&T) -> &'static str)
        where
            T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
        {
            let mut seen = std::collections::BTreeSet::new();
            for v in all {
                let text = as_str(v);
                assert!(seen.insert(text), "{text} twice");
                assert_eq!(serde_json::to_value(v).ok(), Some(serde_json::Value::String(text.to_owned())));
                assert_eq!(
                    serde_json::from_value::<T>(serde_json::Value::String(text.to_owned())).ok().as_ref(),
                    Some(v)
                );
            }
        }
        check(v1::Verdict::ALL, |v| v.as_str());
        check(v1::Class::ALL, |v| v.as_str());
        check(v1::Step::ALL, |v| v.as_str());
        check(v1::Code::ALL, |v| v.as_str());
        check(v1::CauseCode::ALL, |v| v.as_str());
        check(v1::Confidence::ALL, |v| v.as_str());
        check(v1::SelfCheck::ALL, |v| v.as_str());
        assert!(serde_json::from_str::<v1::Code>("\"no-such-code\"").is_err());
        assert!(serde_json::from_str::<v1::CauseCode>("\"no-such-cause\"").is_err());
    }
}
