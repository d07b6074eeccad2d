"""Alert ingestion's settings (healthguard.settings): flood limits, the HL7 listener, the rules
gateways are registered by. The defaults are the modules' own."""
from pydantic import model_validator

from healthguard.settings import ConfigError, Networks, ServiceSettings, Settings, Whole

from . import flood_limits, hl7_listener
from .hl7_gateways import GatewayRules


class GatewayRuleSettings(Settings):
    """The operator's limits on what a gateway may be registered with (the service and the
    `python -m alert_ingestion.hl7_gateways` CLI). The narrowest limits accepted still refuse /0:
    no setting makes "anywhere" an allowlist."""
    HL7_ALLOWLIST_WIDEST_IPV4_PREFIX: Whole(8, 32) = GatewayRules.widest_ipv4_prefix
    HL7_ALLOWLIST_WIDEST_IPV6_PREFIX: Whole(32, 128) = GatewayRules.widest_ipv6_prefix
    # Where gateways' PCD-05 listeners may be; empty: none.
    HL7_DEVICE_NETWORKS: Networks = ""

    @property
    def gateway_rules(self) -> GatewayRules:
        return GatewayRules(widest_ipv4_prefix=self.HL7_ALLOWLIST_WIDEST_IPV4_PREFIX,
                            widest_ipv6_prefix=self.HL7_ALLOWLIST_WIDEST_IPV6_PREFIX,
                            device_networks=self.HL7_DEVICE_NETWORKS)


class GatewayCliSettings(GatewayRuleSettings):
    DATABASE_URL: str


class AlertIngestionSettings(ServiceSettings, GatewayRuleSettings):
    DEVICE_ALERTS_PER_SECOND: Whole(1, 1_000_000) = flood_limits.DEFAULT_DEVICE_ALERTS_PER_SECOND
    MANUAL_ALERTS_PER_MINUTE: Whole(1, 1_000_000) = flood_limits.DEFAULT_MANUAL_ALERTS_PER_MINUTE
    # The MLLP listener (HL7.md).
    HL7_MLLP_BIND: str = hl7_listener.DEFAULT_BIND
    HL7_MLLP_PORT: Whole(0, 65535) = hl7_listener.DEFAULT_PORT
    HL7_MAX_MESSAGE_BYTES: Whole(1024, 16 * 1024 * 1024) = hl7_listener.DEFAULT_MAX_MESSAGE_BYTES
    HL7_MAX_CONNECTIONS: Whole(1, 4096) = hl7_listener.DEFAULT_MAX_CONNECTIONS
    HL7_IDLE_SECONDS: Whole(1, 86400, "of seconds") = hl7_listener.DEFAULT_IDLE_SECONDS
    HL7_MSH_DEADLINE_SECONDS: Whole(1, 300, "of seconds") = hl7_listener.DEFAULT_MSH_DEADLINE_SECONDS
    HL7_MAX_CONNECTIONS_PER_ADDRESS: Whole(1, 4096) = hl7_listener.DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
    # Unset: the default, or a quarter of HL7_MAX_CONNECTIONS when that is less.
    HL7_RESERVED_CONNECTIONS: Whole(0, 4096) = None

    @model_validator(mode="after")
    def _reserved_within_the_maximum(self):
        if self.HL7_RESERVED_CONNECTIONS is None:
            object.__setattr__(self, "HL7_RESERVED_CONNECTIONS", min(
                hl7_listener.DEFAULT_RESERVED_CONNECTIONS, self.HL7_MAX_CONNECTIONS // 4))
        if self.HL7_RESERVED_CONNECTIONS >= self.HL7_MAX_CONNECTIONS:
            raise ConfigError(f"setting HL7_RESERVED_CONNECTIONS ({self.HL7_RESERVED_CONNECTIONS}) must "
                              f"be less than HL7_MAX_CONNECTIONS ({self.HL7_MAX_CONNECTIONS})")
        return self
