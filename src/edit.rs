//! Editing the `[plugins]` table in place with `toml_edit`, keeping the user's comments,
//! order and formatting everywhere else byte for byte.
//!
//! Works on `warpgate.toml` and on the `[workspace.metadata.warpgate.plugins]` /
//! `[package.metadata.warpgate.plugins]` tables of a `Cargo.toml`. Edits return the new
//! text; the caller validates it and writes it atomically, so a failed command leaves the
//! file untouched.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, InlineTable, Item, Table, TableLike, Value};

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
    #[error("plugin `{id}` is already declared in `{}`", path.display())]
    Duplicate {
        /// The id.
        id: Id,
        /// The file.
        path: PathBuf,
    },
    /// The id differs from a declared one only in letter case.
    #[error("plugin `{id}` differs from the declared `{existing}` only in letter case (in `{}`); their files would be one file on macOS and Windows", path.display())]
    CaseTwin {
        /// The id given.
        id: Id,
        /// The declared id.
        existing: String,
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

impl crate::diagnostic::Diagnostic for EditError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Duplicate { id, .. } => Some(format!(
                "run `warpgate remove {id}` first, or pick another id"
            )),
            Self::CaseTwin { .. } => Some("pick another id".into()),
            Self::NotDeclared { .. } => {
                Some("run `warpgate list` to see the declared plugins".into())
            }
            Self::Io { .. } | Self::Parse { .. } | Self::NotATable { .. } => None,
        }
    }
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

/// The plugins table's item (a `[…plugins]` table or an inline one), created as a
/// `[…plugins]` table with implicit parents if missing.
fn plugins_item<'a>(
    document: &'a mut DocumentMut,
    source: ConfigSource,
    path: &Path,
) -> Result<&'a mut Item, EditError> {
    let keys = table_path(source);
    let not_a_table = |depth: usize| EditError::NotATable {
        key: keys[..=depth].join("."),
        path: path.to_path_buf(),
    };
    let mut table: &mut dyn TableLike = document.as_table_mut();
    for (depth, key) in keys.iter().enumerate() {
        let last = depth + 1 == keys.len();
        let item = table.entry(key).or_insert_with(|| {
            let mut new = Table::new();
            new.set_implicit(!last);
            Item::Table(new)
        });
        if last {
            return if item.is_table_like() {
                Ok(item)
            } else {
                Err(not_a_table(depth))
            };
        }
        table = item.as_table_like_mut().ok_or_else(|| not_a_table(depth))?;
    }
    unreachable!("the table path is never empty")
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
    let item = plugins_item(&mut document, source, path)?;
    let duplicate = || EditError::Duplicate {
        id: id.clone(),
        path: path.to_path_buf(),
    };
    let twin = item.as_table_like().and_then(|table| {
        table
            .iter()
            .map(|(key, _)| key)
            .find(|key| *key != id.as_str() && key.eq_ignore_ascii_case(id.as_str()))
            .map(str::to_string)
    });
    if let Some(existing) = twin {
        return Err(EditError::CaseTwin {
            id: id.clone(),
            existing,
            path: path.to_path_buf(),
        });
    }
    if let Some(inline) = item.as_inline_table_mut() {
        if inline.contains_key(id.as_str()) {
            return Err(duplicate());
        }
        // The space before `}` belongs to the last value: keep it last.
        let closing = inline.iter_mut().last().map(|(_, value)| {
            let decor = value.decor_mut();
            let suffix = decor.suffix().cloned();
            decor.set_suffix("");
            suffix
        });
        inline.insert(id.as_str(), entry_value(entry));
        if let (Some(Some(suffix)), Some(value)) = (closing, inline.get_mut(id.as_str())) {
            value.decor_mut().set_suffix(suffix);
        }
    } else if let Some(table) = item.as_table_mut() {
        if table.contains_key(id.as_str()) {
            return Err(duplicate());
        }
        table.insert(id.as_str(), Item::Value(entry_value(entry)));
    }
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
    let item = plugins_item(&mut document, source, path)?;
    let not_declared = || EditError::NotDeclared {
        id: id.clone(),
        path: path.to_path_buf(),
    };
    if let Some(inline) = item.as_inline_table_mut() {
        let was_last = inline
            .iter()
            .last()
            .is_some_and(|(key, _)| key == id.as_str());
        let removed = inline.remove(id.as_str()).ok_or_else(not_declared)?;
        if was_last
            && let Some(suffix) = removed.decor().suffix().cloned()
            && let Some((_, value)) = inline.iter_mut().last()
        {
            value.decor_mut().set_suffix(suffix);
        }
    } else if let Some(table) = item.as_table_mut() {
        table.remove(id.as_str()).ok_or_else(not_declared)?;
    }
    Ok(document.to_string())
}

/// Reads `path` for editing.
pub fn read(path: &Path) -> Result<String, EditError> {
    crate::fs::read_text(path, crate::fs::Links::Follow).map_err(|source| EditError::Io {
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
            settings: Default::default(),
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
    fn inline_tables_stay_inline_with_their_comments() {
        let text = "[package]\nname = \"app\"\n\n[package.metadata.warpgate]\nplugins = { a = \"file://a.wasm\" } # keep me\n";
        let id = Id::new("b").unwrap();
        let out = add_entry(
            text,
            Path::new("Cargo.toml"),
            ConfigSource::PackageMetadata,
            &id,
            &entry("file://b.wasm"),
        )
        .unwrap();
        assert_eq!(
            out,
            "[package]\nname = \"app\"\n\n[package.metadata.warpgate]\nplugins = { a = \"file://a.wasm\", b = \"file://b.wasm\" } # keep me\n"
        );
        let back = remove_entry(
            &out,
            Path::new("Cargo.toml"),
            ConfigSource::PackageMetadata,
            &id,
        )
        .unwrap();
        assert_eq!(back, text);
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
        let error = add_entry(
            text,
            Path::new("w.toml"),
            ConfigSource::WarpgateToml,
            &Id::new("Echo").unwrap(),
            &entry("file://x.wasm"),
        )
        .unwrap_err();
        assert_eq!(
            crate::diagnostic::Report::new(&error).to_string(),
            "plugin `Echo` differs from the declared `echo` only in letter case (in `w.toml`); their files would be one file on macOS and Windows\nhint: pick another id"
        );
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
