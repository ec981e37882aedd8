//! KMS ARNs: parsing, and which identifiers the keyrings accept.

/// The parts of a KMS ARN: `arn:PARTITION:kms:REGION:ACCOUNT:key/ID` (or `alias/NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KmsArn<'a> {
    pub(super) partition: &'a str,
    pub(super) region: &'a str,
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
            region,
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

/// The partition of `region` when its name tells (`cn-*` is `aws-cn`, `us-gov-*` is
/// `aws-us-gov`, the commercial prefixes `us-`, `eu-`, `ap-` ... are `aws`); `None` for a
/// region of a partition not listed here (then only the region itself is compared).
pub(super) fn partition_of(region: &str) -> Option<&'static str> {
    const SPECIAL: [(&str, &str); 7] = [
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("us-iso-", "aws-iso"),
        ("eu-isoe-", "aws-iso-e"),
        ("eusc-", "aws-eusc"),
    ];
    const COMMERCIAL: [&str; 9] = [
        "af-", "ap-", "ca-", "eu-", "il-", "me-", "mx-", "sa-", "us-",
    ];
    if let Some((_, partition)) = SPECIAL.iter().find(|(p, _)| region.starts_with(p)) {
        return Some(partition);
    }
    COMMERCIAL
        .iter()
        .any(|p| region.starts_with(p))
        .then_some("aws")
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
        assert_eq!(
            (a.partition, a.region, a.account),
            ("aws", "us-east-1", "123456789012")
        );
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

    #[test]
    fn partitions() {
        for (region, partition) in [
            ("us-east-1", Some("aws")),
            ("eu-west-1", Some("aws")),
            ("ap-southeast-2", Some("aws")),
            ("cn-north-1", Some("aws-cn")),
            ("us-gov-west-1", Some("aws-us-gov")),
            ("us-iso-east-1", Some("aws-iso")),
            ("us-isob-east-1", Some("aws-iso-b")),
            ("eu-isoe-west-1", Some("aws-iso-e")),
            ("mars-north-1", None),
        ] {
            assert_eq!(partition_of(region), partition, "{region}");
        }
    }
}
