"""Every ORM model of the service, imported in one place so Alembic sees them all."""

from service.access.models import ApiKey, Staff
from service.content.models import Base
from service.delivery.models import Webhook, WebhookDelivery
from service.vetting.models import AuditEvent, FindingWaiver

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "FindingWaiver",
    "Staff",
    "Webhook",
    "WebhookDelivery",
]
