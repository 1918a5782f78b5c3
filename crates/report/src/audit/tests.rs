use super::v1::*;
use super::{render_html, render_markdown, render_text};
use crate::v1 as verify;

fn verify_report(fixture: &str) -> verify::Report {
    let text = match fixture {
        "not-reproduced" => include_str!("../../../../tests/fixtures/report/not-reproduced.json"),
        "error-missing-go-sum" => include_str!("../../../../tests/fixtures/report/error-missing-go-sum.json"),
        "error-toolchain-unreachable" => {
            include_str!("../../../../tests/fixtures/report/error-toolchain-unreachable.json")
        }
        other => panic!("no fixture {other}"),
    };
    match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => panic!("{fixture}: {e}"),
    }
}

fn binary(path: &str, outcome: Outcome, build_key: Option<&str>) -> Binary {
    Binary {
        path: path.to_string(),
        links: vec![],
        sha256: "ab".repeat(32),
        size: 1234,
        go_version: Some("go1.22.5".into()),
        main_module: Some(MainModule {
            path: "example.com/acme/app".into(),
            version: "v1.2.3".into(),
            sum: Some("h1:abc=".into()),
        }),
        package: Some("example.com/acme/app/cmd/app".into()),
        claimed_source: ClaimedSource::Module {
            path: "example.com/acme/app".into(),
            version: "v1.2.3".into(),
            sum: Some("h1:abc=".into()),
        },
        outcome,
        reason: (outcome == Outcome::Unverifiable).then_some(Reason::SourceUnknown),
        detail: String::new(),
        build_key: build_key.map(str::to_string),
        report: None,
    }
}

fn audit(platforms: Vec<Platform>) -> AuditReport {
    let counts = Counts::of(&platforms);
    let verdict = ImageVerdict::from_outcomes(platforms.iter().flat_map(|p| p.binaries.iter().map(|b| b.outcome)));
    AuditReport {
        schema_version: SCHEMA_VERSION,
        tool: Tool { name: "reprove".into(), version: "0.1.0".into() },
        started_on: "2026-12-06T10:00:00Z".into(),
        finished_on: "2026-12-06T10:01:40Z".into(),
        duration_ms: 100_000,
        image: Image {
            input: "registry.test/acme/app:v1".into(),
            reference: Some(format!("registry.test/acme/app@sha256:{}", "cd".repeat(32))),
            digest: format!("sha256:{}", "cd".repeat(32)),
            digest_kind: DigestKind::Index,
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            resolved_from_tag: Some("v1".into()),
        },
        verdict,
        summary: summarize(verdict, &counts),
        counts,
        platforms,
        error: None,
    }
}

fn platform(name: &str, binaries: Vec<Binary>) -> Platform {
    Platform { platform: name.into(), manifest_digest: Some(format!("sha256:{}", "ef".repeat(32))), binaries }
}

/// The image verdict: no binary is nothing to audit; one not reproduced decides;
/// then a failure; then an unverifiable binary; all reproduced is reproduced.
#[test]
fn image_verdict_rule() {
    use Outcome::*;
    let v = |o: &[Outcome]| ImageVerdict::from_outcomes(o.iter().copied());
    assert_eq!(v(&[]), ImageVerdict::NoGoBinaries);
    assert_eq!(v(&[Reproduced]), ImageVerdict::Reproduced);
    assert_eq!(v(&[Reproduced, Reproduced, Reproduced]), ImageVerdict::Reproduced);
    assert_eq!(v(&[Reproduced, NotReproduced, Reproduced]), ImageVerdict::NotReproduced);
    assert_eq!(v(&[Error, Unverifiable, NotReproduced]), ImageVerdict::NotReproduced);
    assert_eq!(v(&[NotReproduced, Error]), ImageVerdict::NotReproduced);
    assert_eq!(v(&[Reproduced, Unverifiable]), ImageVerdict::Unverifiable);
    assert_eq!(v(&[Unverifiable, Reproduced]), ImageVerdict::Unverifiable);
    assert_eq!(v(&[Unverifiable, Error, Reproduced]), ImageVerdict::Error);
    assert_eq!(v(&[Error]), ImageVerdict::Error);
    // Every order of every pair gives the same verdict.
    for a in Outcome::ALL {
        for b in Outcome::ALL {
            assert_eq!(v(&[*a, *b]), v(&[*b, *a]), "{a} {b}");
        }
    }
    assert!(ImageVerdict::Reproduced.is_positive());
    assert!(ImageVerdict::ALL.iter().filter(|v| v.is_positive()).count() == 1);
}

/// Counts: one per binary entry, each outcome counted, builds are distinct keys.
#[test]
fn counts_of_platforms() {
    let platforms = vec![
        platform(
            "linux/amd64",
            vec![
                binary("/a", Outcome::Reproduced, Some("k1")),
                binary("/b", Outcome::Reproduced, Some("k1")),
                binary("/c", Outcome::NotReproduced, Some("k2")),
                binary("/d", Outcome::Unverifiable, None),
            ],
        ),
        platform(
            "linux/arm64",
            vec![binary("/a", Outcome::Reproduced, Some("k3")), binary("/e", Outcome::Error, Some("k4"))],
        ),
    ];
    let c = Counts::of(&platforms);
    assert_eq!(c, Counts { binaries: 6, reproduced: 3, not_reproduced: 1, unverifiable: 1, error: 1, builds: 4 });
    assert_eq!(Counts::of(&[]), Counts::default());
    let r = audit(platforms);
    assert_eq!(r.verdict, ImageVerdict::NotReproduced);
    assert_eq!(
        r.summary,
        "1 of 6 Go binaries not reproduced (3 reproduced, 1 not reproduced, 1 unverifiable, 1 in error); 4 builds"
    );
    assert_eq!(
        summarize(ImageVerdict::NoGoBinaries, &Counts::default()),
        "no Go binary in the image: nothing to audit"
    );
}

/// The error class the CLI maps to an exit code: the audit's own failure, else
/// the gravest of the failed binaries' reports.
#[test]
fn error_class_of_failures() {
    let mut input = binary("/a", Outcome::Error, Some("k1"));
    input.report = Some(Box::new(verify_report("error-missing-go-sum")));
    let mut infra = binary("/b", Outcome::Error, Some("k2"));
    infra.report = Some(Box::new(verify_report("error-toolchain-unreachable")));
    let r = audit(vec![platform("linux/amd64", vec![input.clone()])]);
    assert_eq!(r.error_class(), Some(verify::Class::Input));
    let mut r = audit(vec![platform("linux/amd64", vec![input, infra])]);
    assert_eq!(r.error_class(), Some(verify::Class::Infrastructure));
    r.error = Some(AuditFailure { class: verify::Class::Input, message: "no such image".into() });
    assert_eq!(r.error_class(), Some(verify::Class::Input));
    assert_eq!(audit(vec![]).error_class(), None);
}

/// The document reads back as written, and the claimed source is tagged by `kind`.
#[test]
fn round_trip_and_claimed_source_kinds() {
    let mut nr = binary("/usr/bin/app", Outcome::NotReproduced, Some("k1"));
    nr.report = Some(Box::new(verify_report("not-reproduced")));
    let mut vcs = binary("/usr/bin/vcs", Outcome::Reproduced, Some("k2"));
    vcs.claimed_source =
        ClaimedSource::Vcs { system: "git".into(), revision: "0123".into(), modified: false, time: None };
    let mut devel = binary("/usr/bin/devel", Outcome::Unverifiable, None);
    devel.claimed_source = ClaimedSource::Devel;
    let mut none = binary("/usr/bin/none", Outcome::Unverifiable, None);
    none.claimed_source = ClaimedSource::NoBuildInfo;
    none.reason = Some(Reason::NoBuildInfo);
    let r = audit(vec![platform("linux/amd64", vec![nr, vcs, devel, none])]);
    let json = match serde_json::to_value(&r) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    let kinds: Vec<&str> =
        (0..4).map(|i| json["platforms"][0]["binaries"][i]["claimedSource"]["kind"].as_str().unwrap_or("?")).collect();
    assert_eq!(kinds, ["module", "vcs", "devel", "none"]);
    for (i, b) in r.platforms[0].binaries.iter().enumerate() {
        assert_eq!(kinds[i], b.claimed_source.kind());
    }
    assert_eq!(json["platforms"][0]["binaries"][3]["reason"], "no-build-info");
    assert_eq!(json["image"]["digestKind"], "index");
    assert_eq!(json["counts"]["notReproduced"], 1);
    let back: AuditReport = match serde_json::from_value(json) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(back, r);
}

/// The schema's lists are the enums' names.
#[test]
fn enums_match_the_schema() {
    let schema: serde_json::Value =
        match serde_json::from_str(include_str!("../../../../schemas/audit-report.schema.json")) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
    let listed = |pointer: &str| -> Vec<String> {
        match schema.pointer(pointer).and_then(|v| v.as_array()) {
            Some(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            None => panic!("{pointer}: not in the schema"),
        }
    };
    let names = |all: Vec<&str>| all.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(listed("/properties/verdict/enum"), names(ImageVerdict::ALL.iter().map(|v| v.as_str()).collect()));
    assert_eq!(
        listed("/$defs/binary/properties/outcome/enum"),
        names(Outcome::ALL.iter().map(|v| v.as_str()).collect())
    );
    assert_eq!(
        listed("/$defs/binary/properties/reason/oneOf/1/enum"),
        names(Reason::ALL.iter().map(|v| v.as_str()).collect())
    );
    assert_eq!(
        listed("/$defs/image/properties/digestKind/enum"),
        names(DigestKind::ALL.iter().map(|v| v.as_str()).collect())
    );
}

const HOSTILE: &str = "/opt/</td><script>alert(1)</script><img src=x onerror=alert(2)>\"'&`|*_[x](http://evil.test)\u{1b}[31m\u{202e}gnp.exe";

fn hostile_report() -> AuditReport {
    let mut b = binary(HOSTILE, Outcome::NotReproduced, Some(HOSTILE));
    b.links = vec![format!("{HOSTILE}-link")];
    b.detail = HOSTILE.to_string();
    b.main_module = Some(MainModule { path: HOSTILE.into(), version: "v1.0.0`|".into(), sum: Some(HOSTILE.into()) });
    let mut report = verify_report("not-reproduced");
    report.summary = HOSTILE.to_string();
    report.causes[0].explanation = HOSTILE.to_string();
    report.modules[0].path = HOSTILE.to_string();
    b.report = Some(Box::new(report));
    let mut r = audit(vec![platform(HOSTILE, vec![b])]);
    r.image.input = HOSTILE.to_string();
    r.summary = HOSTILE.to_string();
    r
}

/// Values from the image cannot add markup to the page: every `<`, `>`, `&`
/// and quote of theirs is escaped, and controls and bidi overrides are shown.
#[test]
fn html_escapes_hostile_strings() {
    let html = render_html(&hostile_report());
    for bad in ["<script", "<img", "</td><script", "\u{1b}", "\u{202e}", "'&`"] {
        assert!(!html.contains(bad), "{bad:?} in the page:\n{html}");
    }
    assert!(html.contains("/opt/&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;`|*_[x](http://evil.test)\\u{1b}[31m\\u{202e}gnp.exe"));
    // No external resource, and the policy allows only the page's own style sheet.
    for attr in ["src=\"", "href=\"http", "href=\"//", "url("] {
        assert!(!html.contains(attr), "{attr}");
    }
    assert!(html.contains("default-src 'none'; style-src 'sha256-"), "{html}");
}

/// The CSP names the style sheet by the base64 of its SHA-256 (checked against a known vector).
#[test]
fn base64_of_known_vectors() {
    assert_eq!(super::html::base64_for_tests(b""), "");
    assert_eq!(super::html::base64_for_tests(b"f"), "Zg==");
    assert_eq!(super::html::base64_for_tests(b"fo"), "Zm8=");
    assert_eq!(super::html::base64_for_tests(b"foo"), "Zm9v");
    assert_eq!(super::html::base64_for_tests(b"foobar"), "Zm9vYmFy");
}

/// Text shows controls as escapes (no terminal sequence gets through); Markdown
/// keeps hostile values inside code spans and escapes them elsewhere.
#[test]
fn text_and_markdown_escape_hostile_strings() {
    let r = hostile_report();
    let text = render_text(&r);
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'), "{text}");
    assert!(text.contains("\\u{1b}[31m\\u{202e}gnp.exe"), "{text}");
    let md = render_markdown(&r);
    assert!(!md.contains('\u{1b}') && !md.contains('\u{202e}'), "{md}");
    // Outside code spans (the detail), markup is escaped.
    assert!(md.contains(" | /opt/&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img "), "{md}");
    // The path's single backtick cannot end its code span: the fence is two.
    assert!(md.contains("| ``/opt/</td><script>"), "{md}");
    // Every table row has exactly its six cell separators (pipes in values are escaped).
    for line in md.lines().filter(|l| l.starts_with("| ❌")) {
        let unescaped = line.match_indices('|').filter(|(i, _)| !line[..*i].ends_with('\\')).count();
        assert_eq!(unescaped, 6, "{line}");
    }
    assert!(md.contains("\\[x\\](http://evil\\.test)"), "{md}");
}

/// The text and Markdown renderings list every binary with its outcome, module and detail.
#[test]
fn text_and_markdown_list_binaries() {
    let mut u = binary("/usr/bin/tool", Outcome::Unverifiable, None);
    u.detail = "no source for example.com/acme/app: add a source".into();
    u.links = vec!["/bin/tool".into()];
    let r = audit(vec![platform("linux/amd64", vec![binary("/usr/bin/app", Outcome::Reproduced, Some("k")), u])]);
    let text = render_text(&r);
    assert!(text.starts_with("verdict: UNVERIFIABLE\n  1 of 2 Go binaries could not be verified"), "{text}");
    assert!(text.contains("\nlinux/amd64 (manifest sha256:efef"), "{text}");
    assert!(text.contains("  reproduced      /usr/bin/app   example.com/acme/app@v1.2.3\n"), "{text}");
    assert!(
        text.contains(
            "  unverifiable    /usr/bin/tool  example.com/acme/app@v1.2.3  source-unknown: no source for example.com/acme/app: add a source\n"
        ),
        "{text}"
    );
    assert!(text.contains("                  also at /bin/tool\n"), "{text}");
    let md = render_markdown(&r);
    assert!(md.starts_with("### ❔ reprove audit: `registry.test/acme/app:v1` unverifiable\n"), "{md}");
    assert!(md.contains("| ✅ reproduced | `/usr/bin/app` | `example.com/acme/app@v1.2.3` | `go1.22.5` |  |"), "{md}");
    assert!(md.contains("| ❔ unverifiable | `/usr/bin/tool`<br>also `/bin/tool` |"), "{md}");
}
