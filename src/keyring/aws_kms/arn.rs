//! KMS ARNs: parsing, and which identifiers the keyrings accept.

/// The parts of a KMS ARN: `arn:PARTITION:kms:REGION:ACCOUNT:key/ID` (or `alias/NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KmsArn<'a> {
    pub(super) partition: &'a str,
    pub(super) account: &'a str,
    resource_type: &'a str,
}

impl<'a> KmsArn<'a> {
    pub(super) fn parse(s: &'a str) -> Option<Self> {
        let mut parts = s.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        let (resource_type, id) = resource.split_once('/')?;
        let ok = arn == "arn"
            && !partition.is_empty()
            && service == "kms"
            && !region.is_empty()
            && !account.is_empty()
            && matches!(resource_type, "key" | "alias")
            && !id.is_empty();
        ok.then_some(Self {
            partition,
            account,
            resource_type,
        })
    }

    pub(super) fn is_key(&self) -> bool {
        self.resource_type == "key"
    }
}

pub(super) fn is_key_arn(s: &str) -> bool {
    KmsArn::parse(s).is_some_and(|a| a.is_key())
}

/// A key id KMS accepts for encryption: key ARN, alias ARN, `alias/NAME` or a bare key id.
pub(super) fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 2048
        && !s.chars().any(char::is_whitespace)
        && (!s.starts_with("arn:") || KmsArn::parse(s).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn arns() {
        let a = KmsArn::parse(KEY).unwrap();
        assert_eq!((a.partition, a.account), ("aws", "123456789012"));
        assert!(a.is_key());
        let alias = KmsArn::parse("arn:aws-cn:kms:cn-north-1:123456789012:alias/x").unwrap();
        assert!(!alias.is_key());
        for bad in [
            "",
            "arn:aws:kms:us-east-1:123456789012",
            "arn:aws:s3:us-east-1:123456789012:key/x",
            "arn::kms:us-east-1:123456789012:key/x",
            "arn:aws:kms::123456789012:key/x",
            "arn:aws:kms:us-east-1::key/x",
            "arn:aws:kms:us-east-1:123456789012:key/",
            "arn:aws:kms:us-east-1:123456789012:bucket/x",
            "nra:aws:kms:us-east-1:123456789012:key/x",
        ] {
            assert!(KmsArn::parse(bad).is_none(), "{bad}");
        }
        assert!(valid_identifier("alias/x"));
        assert!(valid_identifier("1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(!valid_identifier("arn:aws:kms:bad"));
        assert!(!valid_identifier("a b"));
        assert!(!valid_identifier(""));
    }
}
