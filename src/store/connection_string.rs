//! Azure Storage connection strings (`AccountName=...;AccountKey=...;BlobEndpoint=...`, and
//! `UseDevelopmentStorage=true` for Azurite), mapped to what the storage clients need.
//! The azure crates parse these strings but do not map endpoints or the development
//! shortcut, hence this small mapper.

use azure_storage::{CloudLocation, StorageCredentials};

/// The well-known Azurite account and key (public, documented by Microsoft).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[derive(Clone)]
pub struct StorageAccount {
    pub account: String,
    key: Option<String>,
    sas: Option<String>,
    pub blob_endpoint: String,
    pub queue_endpoint: String,
}

impl std::fmt::Debug for StorageAccount {
    // Never print the key or the SAS token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageAccount")
            .field("account", &self.account)
            .field("blob_endpoint", &self.blob_endpoint)
            .field("queue_endpoint", &self.queue_endpoint)
            .finish_non_exhaustive()
    }
}

impl StorageAccount {
    pub fn parse(connection_string: &str) -> Result<Self, String> {
        let mut pairs = std::collections::HashMap::new();
        for part in connection_string.split(';').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| "a part of it is not key=value".to_string())?;
            pairs.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        if pairs
            .get("usedevelopmentstorage")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            let proxy = pairs
                .get("developmentstorageproxyuri")
                .cloned()
                .unwrap_or_else(|| "http://127.0.0.1".into());
            let proxy = proxy.trim_end_matches('/');
            return Ok(StorageAccount {
                account: DEV_ACCOUNT.into(),
                key: Some(DEV_KEY.into()),
                sas: None,
                blob_endpoint: format!("{proxy}:10000/{DEV_ACCOUNT}"),
                queue_endpoint: format!("{proxy}:10001/{DEV_ACCOUNT}"),
            });
        }
        let account = pairs
            .get("accountname")
            .cloned()
            .ok_or_else(|| "it has no AccountName".to_string())?;
        let key = pairs.get("accountkey").cloned();
        let sas = pairs
            .get("sharedaccesssignature")
            .map(|s| s.trim_start_matches('?').to_string());
        if key.is_none() && sas.is_none() {
            return Err("it has neither AccountKey nor SharedAccessSignature".into());
        }
        let protocol = pairs
            .get("defaultendpointsprotocol")
            .cloned()
            .unwrap_or_else(|| "https".into());
        let suffix = pairs
            .get("endpointsuffix")
            .cloned()
            .unwrap_or_else(|| "core.windows.net".into());
        let endpoint = |name: &str, sub: &str| {
            pairs
                .get(name)
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("{protocol}://{account}.{sub}.{suffix}"))
        };
        Ok(StorageAccount {
            blob_endpoint: endpoint("blobendpoint", "blob"),
            queue_endpoint: endpoint("queueendpoint", "queue"),
            account,
            key,
            sas,
        })
    }

    pub fn credentials(&self) -> Result<StorageCredentials, String> {
        match (&self.key, &self.sas) {
            (Some(key), _) => Ok(StorageCredentials::access_key(
                self.account.clone(),
                key.clone(),
            )),
            (None, Some(sas)) => StorageCredentials::sas_token(sas.clone())
                .map_err(|_| "its SharedAccessSignature cannot be parsed".to_string()),
            (None, None) => Err("it has no credentials".into()),
        }
    }

    pub fn blob_location(&self) -> CloudLocation {
        CloudLocation::Custom {
            account: self.account.clone(),
            uri: self.blob_endpoint.clone(),
        }
    }

    pub fn queue_location(&self) -> CloudLocation {
        CloudLocation::Custom {
            account: self.account.clone(),
            uri: self.queue_endpoint.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_storage_maps_to_azurite_ports() {
        let a = StorageAccount::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(a.account, DEV_ACCOUNT);
        assert_eq!(a.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(a.queue_endpoint, "http://127.0.0.1:10001/devstoreaccount1");
    }

    #[test]
    fn full_connection_string_uses_explicit_endpoints_or_the_suffix() {
        let a = StorageAccount::parse(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(a.blob_endpoint, "https://acct.blob.core.windows.net");
        let b = StorageAccount::parse(
            "AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1234/devstoreaccount1/;",
        )
        .unwrap();
        assert_eq!(b.blob_endpoint, "http://127.0.0.1:1234/devstoreaccount1");
        assert!(!format!("{b:?}").contains("a2V5"));
    }

    #[test]
    fn missing_account_or_key_is_an_error() {
        assert!(StorageAccount::parse("AccountKey=x").is_err());
        assert!(StorageAccount::parse("AccountName=x").is_err());
        assert!(StorageAccount::parse("garbage").is_err());
    }
}
