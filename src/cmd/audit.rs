//! `reprove audit IMAGE --list`: the Go binaries of an image, per platform,
//! with their build info (the discovery half of the audit; the work is in
//! `inventory`). Bad input (a malformed, hostile or missing image, a bad
//! reference or platform) exits 2; registry and disk failures exit 3.

use std::path::PathBuf;

use inventory::{Binary, ImageInput, Inventory, Options, ScanError};
use oci::walk::WalkOptions;
use oci::{Platform, ToolchainError};
use serde_json::{json, Value};

use super::toolchain::{parse_size, RegistryArgs};
use crate::exit::{CommandResult, Failure, Verdict};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: REF@sha256:… or REF:TAG in a registry, oci:DIR[:TAG] (an OCI layout), docker-archive:FILE (`docker save`).
    #[arg(value_name = "IMAGE")]
    image: String,
    /// List the Go binaries of the image (paths, Go versions, main modules) without rebuilding them.
    #[arg(long)]
    list: bool,
    /// Only this platform of an image index (os/arch[/variant]). Repeatable; default: every platform.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Vec<String>,
    /// Print a JSON document (schemas/audit-list.schema.json).
    #[arg(long)]
    json: bool,
    /// Largest file read to see whether it is a Go binary (larger ones are listed as not read).
    #[arg(long, value_name = "SIZE", default_value = "1G")]
    max_binary_size: String,
    /// Bound of the uncompressed size of each platform's layers together.
    #[arg(long, value_name = "SIZE", default_value = "32G")]
    max_unpacked_size: String,
    /// Write each binary found to DIR, named by its SHA-256.
    #[arg(long, value_name = "DIR")]
    binaries_dir: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(args: Args) -> CommandResult {
    if !args.list {
        return Err(Failure::input(anyhow::anyhow!(
            "reprove audit without --list is not yet implemented: use --list to list the image's Go binaries"
        )));
    }
    let input = ImageInput::parse(&args.image).map_err(Failure::input)?;
    let platforms =
        args.platform.iter().map(|p| p.parse::<Platform>()).collect::<Result<Vec<_>, _>>().map_err(Failure::input)?;
    let walk = WalkOptions {
        max_file_size: parse_size(&args.max_binary_size)?,
        max_unpacked_size: parse_size(&args.max_unpacked_size)?,
        ..WalkOptions::default()
    };
    let mut options = Options { walk, binaries_dir: args.binaries_dir.clone(), ..Options::default() };
    options.open.platforms = platforms;
    if matches!(input, ImageInput::Registry(_)) {
        options.open.registry = args.registry.to_options()?;
    }
    let runtime = super::io_runtime()?;
    let inventory = inventory::scan_blocking(&runtime, &input, &options).map_err(|e| failure(&input, e))?;
    for note in &inventory.image.notes {
        eprintln!("reprove: note: {note}");
    }
    for p in &inventory.platforms {
        for note in &p.notes {
            eprintln!("reprove: note: {}: {note}", p.platform);
        }
    }
    if args.json {
        let doc = document(&inventory);
        println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| Failure::infrastructure(anyhow::anyhow!(e)))?);
    } else {
        print!("{}", text(&inventory));
    }
    Ok(Verdict::Positive)
}

fn failure(input: &ImageInput, e: ScanError) -> Failure {
    let is_input = e.is_input(input);
    let error = match e {
        // The bound is this command's flag: say so (the library does not know flags).
        ScanError::Image(ToolchainError::TooLarge { image, limit }) => {
            anyhow::anyhow!("image {image} unpacks to more than {limit} bytes (--max-unpacked-size); refusing it")
        }
        e => anyhow::Error::new(e),
    };
    if is_input {
        Failure::input(error)
    } else {
        Failure::infrastructure(error)
    }
}

/// One line per binary: platform, path, Go version, main module@version (or why it is unverifiable).
fn text(inv: &Inventory) -> String {
    let mut out = String::new();
    let resolved = if inv.image.resolved_from_tag { " (resolved from a tag)" } else { "" };
    out.push_str(&format!(
        "image {} {} {}{resolved}\n",
        inv.image.input,
        inv.image.digest_of.as_str(),
        inv.image.digest
    ));
    for p in &inv.platforms {
        for b in &p.binaries {
            let (go, what) = match &b.build_info {
                Some(bi) => {
                    let main = if bi.main.path.is_empty() {
                        format!("{} (no main module)", String::from_utf8_lossy(&bi.path))
                    } else {
                        format!(
                            "{}@{}",
                            String::from_utf8_lossy(&bi.main.path),
                            String::from_utf8_lossy(&bi.main.version)
                        )
                    };
                    (String::from_utf8_lossy(&bi.go_version).into_owned(), main)
                }
                None => ("-".to_string(), format!("unverifiable: {}", unverifiable(b))),
            };
            out.push_str(&format!("{}\t{}\t{go}\t{what}\n", p.platform, b.path));
        }
    }
    out
}

fn unverifiable(b: &Binary) -> String {
    b.unverifiable.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn binary_json(b: &Binary) -> Value {
    let build_info = b.build_info.as_ref().map(|bi| {
        let bytes = goinfo::format_json(bi, &goinfo::ExtraFields::default());
        serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)
    });
    json!({
        "path": b.path,
        "links": b.links,
        "sha256": b.sha256,
        "size": b.size,
        "format": inventory::format_name(b.format),
        "machine": b.machine.map(|m| json!({
            "format": inventory::format_name(m.format),
            "goarch": m.goarch,
            "description": m.describe(),
        })),
        "buildInfo": build_info,
        "unverifiable": b.unverifiable.as_ref().map(ToString::to_string),
        "evidence": match &b.unverifiable {
            Some(inventory::Unverifiable::NoBuildInfo { evidence, .. }) => json!(evidence),
            None => Value::Null,
        },
    })
}

/// The `--json` document (schemas/audit-list.schema.json).
fn document(inv: &Inventory) -> Value {
    json!({
        "image": {
            "input": inv.image.input,
            "reference": inv.image.reference,
            "digest": inv.image.digest.to_string(),
            "digestOf": inv.image.digest_of.as_str(),
            "mediaType": inv.image.media_type,
            "resolvedFromTag": inv.image.resolved_from_tag,
            "notes": inv.image.notes,
        },
        "platforms": inv.platforms.iter().map(|p| json!({
            "platform": p.platform.to_string(),
            "manifestDigest": p.manifest_digest.as_ref().map(ToString::to_string),
            "configDigest": p.config_digest.to_string(),
            "binaries": p.binaries.iter().map(binary_json).collect::<Vec<_>>(),
            "notes": p.notes,
        })).collect::<Vec<_>>(),
    })
}
