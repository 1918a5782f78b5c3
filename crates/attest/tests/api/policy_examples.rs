//! Every verification policy in `examples/policies/` parses with [`Policy::from_toml`]
//! and matches `schemas/policy.schema.json` (the `admission-*.toml` admission policies
//! are `reprove admit`'s, checked by `tests/it/admit.rs`); policies the parser refuses are refused by the schema
//! too where the schema can say so (the `[certificate]` identity shape).

use std::path::Path;

use attest::policy::Policy;
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn validator() -> Result<jsonschema::Validator, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/policy.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    Ok(jsonschema::options().build(&schema).map_err(|e| e.to_string())?)
}

#[test]
fn examples_parse_and_match_the_schema() -> TestResult {
    let validator = validator()?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let admission = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("admission-"));
        if path.extension().is_none_or(|e| e != "toml") || admission {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        Policy::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: Value = toml::from_str(&text)?;
        let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        seen += 1;
    }
    assert!(seen >= 3, "only {seen} example policies");
    Ok(())
}

#[test]
fn the_schema_and_the_parser_refuse_half_identities() -> TestResult {
    let validator = validator()?;
    for text in [
        "version = 1\n[certificate]\nidentities = [{ subject = \"a\" }]\n",
        "version = 1\n[certificate]\nidentities = [{ subject = \"a\", subject_regexp = \"b\", issuer = \"c\" }]\n",
        "version = 1\n[certificate]\nidentities = []\n",
    ] {
        assert!(Policy::from_toml(text).is_err(), "{text}");
        let value: Value = toml::from_str(text)?;
        assert!(!validator.is_valid(&value), "the schema accepts {text}");
    }
    Ok(())
}
