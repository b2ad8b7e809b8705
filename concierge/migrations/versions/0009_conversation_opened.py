"""`stats` over a period reads the conversations opened since its start, through an index by when they opened

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_conversation_opened', 'conversation', ['opened_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_conversation_opened', table_name='conversation')
