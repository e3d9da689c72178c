//! Tidy checks that keep the layering honest: the core stays pure, tests
//! stay honest.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_knows_nothing_of_actors_io_http_or_the_clock() {
    let forbidden = [
        "actix",
        "tokio",
        "sled",
        "dashmap",
        "crossbeam",
        "reqwest",
        "std::fs",
        "std::net",
        "std::thread",
        "SystemTime",
        "Instant",
        "rand::",
        "crate::wal",
        "crate::api",
        "crate::actors",
        "crate::app",
        "crate::projection",
        "crate::clock",
    ];
    let mut files = vec![];
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core"),
        &mut files,
    );
    assert!(files.len() >= 5, "src/core not found");
    let mut offences = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in forbidden {
                if code.contains(word) {
                    offences.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "src/core must stay pure:\n{}",
        offences.join("\n")
    );
}

#[test]
fn no_ignored_or_should_panic_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let (ignore, should_panic) = (concat!("#[", "ignore"), concat!("#[", "should_panic"));
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains(ignore) && !text.contains(should_panic),
            "{} skips or inverts a test",
            f.display()
        );
    }
}

#[test]
fn every_config_key_is_documented() {
    let text = surge::config::DEFAULT_TOML;
    let mut previous = "";
    for line in text.lines() {
        let line = line.trim();
        if let Some((key, _)) = line.split_once('=') {
            if !line.starts_with('#') {
                assert!(
                    previous.starts_with('#'),
                    "config key `{}` has no comment above it",
                    key.trim()
                );
            }
        }
        previous = line;
    }
}

/// The README's error table lists every code the API can answer with, under
/// its status, and nothing else.
#[test]
fn readme_error_table_matches_the_error_codes() {
    use std::collections::BTreeSet;
    use surge::api::error::ErrorCode;
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("| status | codes |")
        .expect("README has an error table");
    let mut documented = BTreeSet::new();
    for line in readme[start..].lines().skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let status: u16 = cells[1].parse().expect("a status in the first column");
        // Codes are the backquoted words of the second column; details in
        // parentheses (the fields an error carries) are not codes.
        let mut codes = String::new();
        let mut depth = 0usize;
        for c in cells[2].chars() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                c if depth == 0 => codes.push(c),
                _ => {}
            }
        }
        for (i, part) in codes.split('`').enumerate() {
            if i % 2 == 1 {
                documented.insert((status, part.to_owned()));
            }
        }
    }
    let actual: BTreeSet<(u16, String)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.status().as_u16(), c.as_str().to_owned()))
        .collect();
    let missing: Vec<_> = actual.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&actual).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "README error table out of date: missing {missing:?}, not an error code {unknown:?}"
    );
}

/// Routes are registered only through `api::routes::Routes`, which records
/// them: a route registered around it would be served undocumented, and
/// the OpenAPI test, which walks that record, would not see it.
#[test]
fn routes_are_registered_only_through_the_route_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = root.join("src/api/routes.rs");
    let mut files = vec![];
    rust_files(&root.join("src"), &mut files);
    let direct = [
        "web::get()",
        "web::post()",
        "web::put()",
        "web::delete()",
        "web::patch()",
        "web::head()",
        "web::method(",
        "web::resource(",
        "web::scope(",
        "web::route()",
        ".service(",
    ];
    let mut found = vec![];
    for f in files.iter().filter(|f| **f != table) {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for d in direct {
                if line.contains(d) {
                    found.push(format!("{}:{}: {d}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "register routes through api::routes::Routes: {found:#?}"
    );
}
