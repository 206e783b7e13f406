//! Editing the `[plugins]` table in place with `toml_edit`, keeping the user's comments,
//! order and formatting everywhere else byte for byte.
//!
//! Works on `warpgate.toml` and on the `[workspace.metadata.warpgate.plugins]` /
//! `[package.metadata.warpgate.plugins]` tables of a `Cargo.toml`. Edits return the new
//! text; the caller validates it and writes it atomically, so a failed command leaves the
//! file untouched.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

use crate::config::{ConfigSource, PluginEntry};
use crate::id::Id;

/// Why an edit could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The file could not be read.
    #[error("failed to read `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("`{}` is not valid TOML: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The id is already declared.
    #[error("plugin `{id}` is already declared in `{}`\nhint: run `warpgate remove {id}` first, or pick another id", path.display())]
    Duplicate {
        /// The id.
        id: Id,
        /// The file.
        path: PathBuf,
    },
    /// The id is not declared.
    #[error("plugin `{id}` is not declared in `{}`", path.display())]
    NotDeclared {
        /// The id.
        id: Id,
        /// The file.
        path: PathBuf,
    },
    /// A key on the way to the plugins table is not a table.
    #[error("`{key}` in `{}` is not a table", path.display())]
    NotATable {
        /// The dotted key.
        key: String,
        /// The file.
        path: PathBuf,
    },
}

/// The dotted path of the plugins table for a config source.
fn table_path(source: ConfigSource) -> &'static [&'static str] {
    match source {
        ConfigSource::WarpgateToml => &["plugins"],
        ConfigSource::WorkspaceMetadata => &["workspace", "metadata", "warpgate", "plugins"],
        ConfigSource::PackageMetadata => &["package", "metadata", "warpgate", "plugins"],
    }
}

fn parse(text: &str, path: &Path) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|error| EditError::Parse {
            path: path.to_path_buf(),
            message: error.to_string(),
        })
}

/// The plugins table, created (as implicit parent tables + a `[…plugins]` table) if missing.
fn plugins_table<'a>(
    document: &'a mut DocumentMut,
    source: ConfigSource,
    path: &Path,
) -> Result<&'a mut Table, EditError> {
    let keys = table_path(source);
    let mut table = document.as_table_mut();
    for (depth, key) in keys.iter().enumerate() {
        let last = depth + 1 == keys.len();
        let item = table.entry(key).or_insert_with(|| {
            let mut new = Table::new();
            new.set_implicit(!last);
            Item::Table(new)
        });
        if let Item::Value(Value::InlineTable(inline)) = item {
            let inline = std::mem::take(inline);
            *item = Item::Table(inline.into_table());
        }
        table = item.as_table_mut().ok_or_else(|| EditError::NotATable {
            key: keys[..=depth].join("."),
            path: path.to_path_buf(),
        })?;
    }
    Ok(table)
}

/// The TOML value for an entry: a plain string, or an inline table when it has a `version`
/// or `asset`.
fn entry_value(entry: &PluginEntry) -> Value {
    if entry.version.is_none() && entry.asset.is_none() {
        return Value::from(entry.locator.to_string());
    }
    let mut table = InlineTable::new();
    table.insert("locator", Value::from(entry.locator.to_string()));
    if let Some(version) = &entry.version {
        table.insert("version", Value::from(version.to_string()));
    }
    if let Some(asset) = &entry.asset {
        table.insert("asset", Value::from(asset.as_str()));
    }
    table.fmt();
    Value::InlineTable(table)
}

/// `text` with `id = <entry>` appended to the plugins table.
pub fn add_entry(
    text: &str,
    path: &Path,
    source: ConfigSource,
    id: &Id,
    entry: &PluginEntry,
) -> Result<String, EditError> {
    let mut document = parse(text, path)?;
    let table = plugins_table(&mut document, source, path)?;
    if table.contains_key(id.as_str()) {
        return Err(EditError::Duplicate {
            id: id.clone(),
            path: path.to_path_buf(),
        });
    }
    table.insert(id.as_str(), Item::Value(entry_value(entry)));
    Ok(document.to_string())
}

/// `text` without `id` in the plugins table.
pub fn remove_entry(
    text: &str,
    path: &Path,
    source: ConfigSource,
    id: &Id,
) -> Result<String, EditError> {
    let mut document = parse(text, path)?;
    let table = plugins_table(&mut document, source, path)?;
    if table.remove(id.as_str()).is_none() {
        return Err(EditError::NotDeclared {
            id: id.clone(),
            path: path.to_path_buf(),
        });
    }
    Ok(document.to_string())
}

/// Reads `path` for editing.
pub fn read(path: &Path) -> Result<String, EditError> {
    std::fs::read_to_string(path).map_err(|source| EditError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(locator: &str) -> PluginEntry {
        PluginEntry {
            locator: locator.parse().unwrap(),
            version: None,
            asset: None,
        }
    }

    #[test]
    fn add_keeps_everything_else() {
        let text = "# my plugins\n[plugins]\n# the echo one\necho   =   \"file://./e.wasm\"  # trailing\n\n[other]\nx = 1\n";
        let id = Id::new("deno").unwrap();
        let out = add_entry(
            text,
            Path::new("w.toml"),
            ConfigSource::WarpgateToml,
            &id,
            &entry("github://moonrepo/deno-plugin"),
        )
        .unwrap();
        assert_eq!(
            out,
            "# my plugins\n[plugins]\n# the echo one\necho   =   \"file://./e.wasm\"  # trailing\ndeno = \"github://moonrepo/deno-plugin\"\n\n[other]\nx = 1\n"
        );
        let removed =
            remove_entry(&out, Path::new("w.toml"), ConfigSource::WarpgateToml, &id).unwrap();
        assert_eq!(removed, text);
    }

    #[test]
    fn add_table_entry_and_cargo_metadata() {
        let text = "[package]\nname = \"app\"\n";
        let mut bun = entry("github://moonrepo/plugins/bun_tool");
        bun.version = Some("^0.14".parse().unwrap());
        let id = Id::new("bun").unwrap();
        let out = add_entry(
            text,
            Path::new("Cargo.toml"),
            ConfigSource::PackageMetadata,
            &id,
            &bun,
        )
        .unwrap();
        assert_eq!(
            out,
            "[package]\nname = \"app\"\n\n[package.metadata.warpgate.plugins]\nbun = { locator = \"github://moonrepo/plugins/bun_tool\", version = \"^0.14\" }\n"
        );
    }

    #[test]
    fn duplicate_and_missing_ids() {
        let text = "[plugins]\necho = \"file://e.wasm\"\n";
        let id = Id::new("echo").unwrap();
        let error = add_entry(
            text,
            Path::new("w.toml"),
            ConfigSource::WarpgateToml,
            &id,
            &entry("file://x.wasm"),
        )
        .unwrap_err();
        assert!(error.to_string().contains("already declared"), "{error}");
        let other = Id::new("nope").unwrap();
        let error = remove_entry(
            text,
            Path::new("w.toml"),
            ConfigSource::WarpgateToml,
            &other,
        )
        .unwrap_err();
        assert!(matches!(error, EditError::NotDeclared { .. }));
    }
}
