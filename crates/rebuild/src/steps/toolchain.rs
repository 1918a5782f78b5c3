//! The `toolchain` step: the image pulled by digest (or taken from the
//! store), held against `toolchain gc` while the run lives, and its Go
//! version checked against the recipe's: never switched.

use ::recipe::{BuildVcs, Origin, Recipe};
use oci::{PinnedImage, PullOptions, PulledImage, Store, StoreGuard};

use super::build;
use crate::{RebuildError, Request};

/// The image `image` from the store, pulled first when it is not there; held
/// (the guard) so that `toolchain gc` leaves it alone while it is used.
pub fn get_or_pull(
    store: &Store,
    image: &PinnedImage,
    req: &Request,
) -> Result<(PulledImage, StoreGuard), RebuildError> {
    let guard = store.hold()?;
    let pulled = match store.get(image.reference(), None)? {
        Some(p) => p,
        None => {
            let options = PullOptions { registry: req.registry.clone(), ..PullOptions::default() };
            store.pull_blocking(&req.io, image.reference(), &options)?
        }
    };
    Ok((pulled, guard))
}

/// Checks that the image `pulled` (pinned as `image`) can build `recipe`:
/// it has Go, the recipe's version when the recipe names one (else the
/// recipe takes the image's), and git when the recipe stamps VCS information.
pub fn check(pulled: &PulledImage, image: &PinnedImage, recipe: &mut Recipe) -> Result<(), RebuildError> {
    let Some(image_version) = pulled.go_version.clone() else {
        return Err(RebuildError::NoGo { image: image.to_string() });
    };
    match &recipe.go_version {
        Some(v) if *v != image_version => {
            return Err(RebuildError::GoVersionMismatch {
                image: image.to_string(),
                image_version,
                recipe_version: v.clone(),
            })
        }
        Some(_) => {}
        None => {
            recipe.go_version = Some(image_version);
            recipe.origins.insert("go_version".into(), Origin::Default);
        }
    }
    if recipe.buildvcs == BuildVcs::True && !build::has_git(pulled) {
        return Err(RebuildError::VcsNeedsGit { image: image.to_string() });
    }
    Ok(())
}
