//! Embeds `migrations/public` and `migrations/tenant` into the binary.
//!
//! Every folder `NNNN_name` holding an `up.sql` (and optionally a `down.sql`) becomes one
//! migration, ordered by folder name, so adding a migration is adding a folder.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    // Read when the script runs (not baked in when it is built): one built script may serve
    // two checkouts of the crate.
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("migrations");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out = String::new();
    for set in ["public", "tenant"] {
        let dir = root.join(set);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| {
                entry
                    .expect("directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| dir.join(name).join("up.sql").is_file())
            .collect();
        names.sort();
        let const_name = format!("{}_MIGRATIONS", set.to_uppercase());
        writeln!(out, "pub const {const_name}: &[Migration] = &[").unwrap();
        for name in names {
            let up = dir.join(&name).join("up.sql");
            let down = dir.join(&name).join("down.sql");
            println!("cargo:rerun-if-changed={}", up.display());
            let down_expr = if down.is_file() {
                println!("cargo:rerun-if-changed={}", down.display());
                format!("Some(include_str!({:?}))", down.display().to_string())
            } else {
                "None".to_owned()
            };
            writeln!(
                out,
                "    Migration {{ version: {name:?}, up: include_str!({:?}), down: {down_expr} }},",
                up.display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let dest = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    fs::write(dest, out).expect("writing migrations.rs");
}
