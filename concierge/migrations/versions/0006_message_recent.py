"""message index by conversation, direction and time: the flood count and the waiting list read
only the lines they count, not the whole transcript

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_message_recent', 'message', ['conversation_id', 'direction', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_message_recent', table_name='message')
