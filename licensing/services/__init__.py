"""Business rules of the portal. Views, serializers, forms and tasks call these; nothing else writes."""
