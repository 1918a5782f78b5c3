//! The `reference` step: the binary the rebuild is judged against, read once
//! and bounded (a regular file, or a file in an image pinned by digest), or
//! only its digest.

use goinfo::BuildInfo;
use oci::Store;

use super::toolchain;
use crate::{RebuildError, ReferenceInput, Request};

/// The largest reference read.
pub const MAX_REFERENCE: u64 = 2 << 30;

/// What the step found.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Where it was read: the file as given, or `oci://IMAGE#/path`; `None`
    /// when only its digest is known.
    pub path: Option<String>,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// Its bytes, when read.
    pub data: Option<Vec<u8>>,
    /// Its Go build info, when it was read and has one.
    pub build_info: Option<BuildInfo>,
    /// The image it was read from, when it was.
    pub image: Option<report::v1::ReferenceImage>,
}

impl Reference {
    fn read_from(path: String, data: Vec<u8>) -> Reference {
        let build_info = goinfo::read_build_info(&data).ok();
        Reference { path: Some(path), sha256: stdx::sha256_hex(&data), data: Some(data), build_info, image: None }
    }

    /// Its size, when read.
    pub fn size(&self) -> Option<u64> {
        self.data.as_ref().map(|d| d.len() as u64)
    }

    /// The Go version that built it, from its build info.
    pub fn go_version(&self) -> Option<String> {
        self.build_info.as_ref().map(|b| b.go_version.to_string())
    }

    /// The main module path its build info records (`None`: no build info, or built
    /// outside module mode).
    pub fn main_module(&self) -> Option<String> {
        self.build_info.as_ref().map(|b| b.main.path.to_string()).filter(|p| !p.is_empty())
    }

    /// Notes for the report.
    pub fn warnings(&self) -> Vec<String> {
        if self.data.is_some() && self.build_info.is_none() {
            return vec!["the reference has no readable Go build info: the recipe comes from flags".into()];
        }
        Vec::new()
    }
}

/// Reads the reference of `req`; `None` when there is none (`reprove check`).
pub fn read(req: &Request) -> Result<Option<Reference>, RebuildError> {
    match &req.reference {
        ReferenceInput::File(path) => {
            // A regular file only (a device or FIFO is refused before it is opened), bounded.
            let data = confined::open_regular_file(path)
                .and_then(|f| confined::read_bounded(f, &path.display().to_string(), MAX_REFERENCE))
                .map_err(|e| RebuildError::Reference { path: path.clone(), source: std::io::Error::other(e) })?;
            Ok(Some(Reference::read_from(path.display().to_string(), data)))
        }
        ReferenceInput::Digest(hex) => {
            Ok(Some(Reference { path: None, sha256: hex.clone(), data: None, build_info: None, image: None }))
        }
        ReferenceInput::None => Ok(None),
        ReferenceInput::Image { image, path } => {
            let store = Store::open(&req.cache_dir)?;
            let (pulled, _guard) = toolchain::get_or_pull(&store, image, req)?;
            let data = oci::read_file_in_image(&pulled, path, MAX_REFERENCE).map_err(|e| {
                RebuildError::ReferenceInImage { image: image.to_string(), path: path.clone(), reason: e.to_string() }
            })?;
            let mut reference = Reference::read_from(format!("oci://{image}#{path}"), data);
            reference.image = Some(report::v1::ReferenceImage {
                name: image.reference().name(),
                tag: image.reference().tag().map(str::to_string),
                digest: image.digest().to_string(),
                manifest_digest: pulled.manifest_digest.to_string(),
                index_digest: pulled.index_digest.as_ref().map(ToString::to_string),
                platform: pulled.platform.to_string(),
                path: path.clone(),
            });
            Ok(Some(reference))
        }
    }
}
