//! The media settings: how big and in which sizes images are kept, how many
//! are processed at once, and where their bytes go (a local directory or an
//! S3-compatible bucket), checked as a whole at start.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Settings, bad_setting, one_per_core_when_zero};

impl Settings {
    pub fn media_concurrency(&self) -> usize {
        one_per_core_when_zero(self.media_concurrency)
    }

    /// Where media bytes go, checked as a whole: a combination that cannot
    /// work (S3 without a bucket, a key without its secret, S3 settings with
    /// the local store) is an error naming the setting to fix.
    pub fn media_backend(&self) -> anyhow::Result<MediaBackend> {
        let s3_given = [
            ("KITH_S3_ENDPOINT", &self.s3_endpoint),
            ("KITH_S3_BUCKET", &self.s3_bucket),
            ("KITH_S3_REGION", &self.s3_region),
            ("KITH_S3_ACCESS_KEY_ID", &self.s3_access_key_id),
            ("KITH_S3_SECRET_ACCESS_KEY", &self.s3_secret_access_key),
        ]
        .into_iter()
        .find(|(_, value)| value.is_some())
        .map(|(name, _)| name);
        match self.media_store {
            MediaStoreKind::Local => {
                if self.s3_presigned_urls {
                    return Err(bad_setting(
                        "KITH_S3_PRESIGNED_URLS",
                        "true, but KITH_MEDIA_STORE=local has no bucket to presign for: set KITH_MEDIA_STORE=s3",
                    ));
                }
                if let Some(name) = s3_given {
                    return Err(bad_setting(
                        "KITH_MEDIA_STORE",
                        &format!(
                            "`local`, but {name} is set: set KITH_MEDIA_STORE=s3, or unset the KITH_S3_ settings"
                        ),
                    ));
                }
                let dir = self
                    .media_dir
                    .clone()
                    .unwrap_or_else(|| media_dir_beside(&self.database_url));
                Ok(MediaBackend::Local { dir })
            }
            MediaStoreKind::S3 => {
                if self.media_dir.is_some() {
                    return Err(bad_setting(
                        "KITH_MEDIA_DIR",
                        "set, but KITH_MEDIA_STORE=s3 keeps media in the bucket: unset one of them",
                    ));
                }
                let nonempty = |value: &Option<String>| {
                    value
                        .as_deref()
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                let bucket = nonempty(&self.s3_bucket).ok_or_else(|| {
                    bad_setting("KITH_S3_BUCKET", "required with KITH_MEDIA_STORE=s3")
                })?;
                let endpoint = nonempty(&self.s3_endpoint);
                if let Some(endpoint) = &endpoint
                    && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                {
                    return Err(bad_setting(
                        "KITH_S3_ENDPOINT",
                        &format!("`{endpoint}` is not an http:// or https:// URL"),
                    ));
                }
                let access_key_id = nonempty(&self.s3_access_key_id);
                let secret_access_key = nonempty(&self.s3_secret_access_key);
                match (&access_key_id, &secret_access_key) {
                    (Some(_), None) => {
                        return Err(bad_setting(
                            "KITH_S3_SECRET_ACCESS_KEY",
                            "required with KITH_S3_ACCESS_KEY_ID",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(bad_setting(
                            "KITH_S3_ACCESS_KEY_ID",
                            "required with KITH_S3_SECRET_ACCESS_KEY",
                        ));
                    }
                    _ => {}
                }
                Ok(MediaBackend::S3(S3Settings {
                    endpoint,
                    bucket,
                    region: nonempty(&self.s3_region).unwrap_or_else(|| "us-east-1".into()),
                    access_key_id,
                    secret_access_key,
                    path_style: self.s3_path_style,
                }))
            }
        }
    }
}

/// `KITH_MEDIA_STORE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaStoreKind {
    #[default]
    Local,
    S3,
}

/// Where media bytes go, checked ([`Settings::media_backend`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaBackend {
    Local { dir: PathBuf },
    S3(S3Settings),
}

/// A bucket of an S3-compatible service (`KITH_S3_*`).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub path_style: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "…"),
            )
            .field("path_style", &self.path_style)
            .finish()
    }
}

/// `media` beside an SQLite database file (`sqlite://data/kith.db?mode=rwc`
/// → `data/media`), so one directory holds a deployment's state; `media` in
/// the working directory for an in-memory or a server database.
pub fn media_dir_beside(database_url: &str) -> PathBuf {
    let here = || PathBuf::from("media");
    let Some(rest) = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
    else {
        return here();
    };
    let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
    if file.is_empty() || file == ":memory:" || query.split('&').any(|part| part == "mode=memory") {
        return here();
    }
    match Path::new(file).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("media"),
        _ => here(),
    }
}

/// Long sides in pixels. Read from a comma-separated string (`1280,640,160`,
/// as environment variables give it), a single number, or a TOML list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MediaSizes(pub Vec<u32>);

impl<'de> Deserialize<'de> for MediaSizes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            List(Vec<u32>),
            One(u32),
            Text(String),
        }
        let sizes = match Given::deserialize(deserializer)? {
            Given::List(sizes) => sizes,
            Given::One(size) => vec![size],
            Given::Text(text) => text
                .split(',')
                .map(|size| size.trim().parse::<u32>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{text}` is not a comma-separated list of sizes in pixels, e.g. 1280,640,160"
                    ))
                })?,
        };
        if sizes.is_empty() || sizes.contains(&0) {
            return Err(serde::de::Error::custom(
                "sizes must be one or more positive numbers of pixels, e.g. 1280,640,160",
            ));
        }
        Ok(Self(sizes))
    }
}

#[cfg(test)]
mod tests {
    use figment::{Figment, providers::Serialized};

    use super::*;

    fn media_sizes(value: figment::value::Value) -> Result<MediaSizes, Box<figment::Error>> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(("media_sizes", value))
            .extract::<Settings>()
            .map(|settings| settings.media_sizes)
            .map_err(Box::new)
    }

    #[test]
    fn the_media_directory_defaults_to_beside_the_sqlite_file() {
        assert_eq!(
            media_dir_beside("sqlite://kith.db?mode=rwc"),
            PathBuf::from("media")
        );
        assert_eq!(
            media_dir_beside("sqlite://data/kith.db?mode=rwc"),
            PathBuf::from("data/media")
        );
        assert_eq!(
            media_dir_beside("sqlite:///var/lib/kith/kith.db"),
            PathBuf::from("/var/lib/kith/media")
        );
        assert_eq!(media_dir_beside("sqlite::memory:"), PathBuf::from("media"));
        assert_eq!(
            media_dir_beside("sqlite://x.db?mode=memory&cache=shared"),
            PathBuf::from("media")
        );
        assert_eq!(
            media_dir_beside("postgres://kith@db/kith"),
            PathBuf::from("media")
        );
        assert_eq!(
            Settings::default().media_backend().unwrap(),
            MediaBackend::Local {
                dir: PathBuf::from("media")
            }
        );
    }

    #[test]
    fn a_media_store_setting_that_cannot_work_is_named() {
        let error = |configure: fn(&mut Settings)| {
            let mut settings = Settings::default();
            configure(&mut settings);
            settings.media_backend().unwrap_err().to_string()
        };
        assert_eq!(
            error(|s| s.media_store = MediaStoreKind::S3),
            "bad setting KITH_S3_BUCKET: required with KITH_MEDIA_STORE=s3"
        );
        assert!(
            error(|s| s.s3_bucket = Some("photos".into()))
                .starts_with("bad setting KITH_MEDIA_STORE: `local`, but KITH_S3_BUCKET is set")
        );
        assert!(
            error(|s| {
                s.media_store = MediaStoreKind::S3;
                s.s3_bucket = Some("photos".into());
                s.s3_access_key_id = Some("id".into());
            })
            .starts_with("bad setting KITH_S3_SECRET_ACCESS_KEY:")
        );
        assert!(
            error(|s| {
                s.media_store = MediaStoreKind::S3;
                s.s3_bucket = Some("photos".into());
                s.s3_endpoint = Some("minio:9000".into());
            })
            .starts_with("bad setting KITH_S3_ENDPOINT:")
        );
        assert!(
            error(|s| {
                s.media_store = MediaStoreKind::S3;
                s.s3_bucket = Some("photos".into());
                s.media_dir = Some("media".into());
            })
            .starts_with("bad setting KITH_MEDIA_DIR:")
        );
        let mut settings = Settings {
            media_store: MediaStoreKind::S3,
            s3_bucket: Some("photos".into()),
            s3_endpoint: Some("http://127.0.0.1:9000".into()),
            ..Settings::default()
        };
        settings.s3_path_style = false;
        let MediaBackend::S3(s3) = settings.media_backend().unwrap() else {
            panic!("an S3 backend");
        };
        assert_eq!(s3.region, "us-east-1");
        assert!(!s3.path_style);
    }

    #[test]
    fn media_sizes_are_read_from_a_comma_separated_string_a_number_or_a_list() {
        assert_eq!(
            Settings::default().media_sizes,
            MediaSizes(vec![1280, 640, 160])
        );
        assert_eq!(
            media_sizes("2048, 320".into()).unwrap(),
            MediaSizes(vec![2048, 320])
        );
        assert_eq!(media_sizes(160.into()).unwrap(), MediaSizes(vec![160]));
        assert_eq!(
            media_sizes(vec![800, 80].into()).unwrap(),
            MediaSizes(vec![800, 80])
        );
        assert!(media_sizes("1280,big".into()).is_err());
        assert!(media_sizes("640,0".into()).is_err());
    }
}
