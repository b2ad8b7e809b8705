"""the catch-up's plan reads the events received within its window (`ix_inbox_received`), not every
event of the platform (`ix_inbox_place`, which nothing else read)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_inbox_received', 'inboxitem', ['platform', 'received_at'], unique=False)
    op.drop_index('ix_inbox_place', table_name='inboxitem')


def downgrade() -> None:
    op.create_index('ix_inbox_place', 'inboxitem', ['platform', 'place', 'written_at'], unique=False)
    op.drop_index('ix_inbox_received', table_name='inboxitem')
