"""indexes for the reads that ran over every row: open conversations by status, inbound events not done,
a member's recent digest deliveries, the inbox poll's due events by platform

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


DUE = "status IN ('pending', 'processing')"


def upgrade() -> None:
    op.drop_index('ix_inbox_due', table_name='inboxitem')
    op.create_index('ix_inbox_due', 'inboxitem', ['platform', 'status', 'next_attempt_at'], unique=False,
                    sqlite_where=sa.text(DUE), postgresql_where=sa.text(DUE))
    op.create_index('ix_conversation_status', 'conversation', ['status'], unique=False)
    op.create_index('ix_inbox_kept', 'inboxitem', ['status'], unique=False,
                    sqlite_where=sa.text("status != 'done'"), postgresql_where=sa.text("status != 'done'"))
    op.create_index('ix_outbox_member_recent', 'outboxitem', ['member_id', 'created_at'], unique=False,
                    sqlite_where=sa.text('edition_id IS NOT NULL'), postgresql_where=sa.text('edition_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_inbox_due', table_name='inboxitem')
    op.create_index('ix_inbox_due', 'inboxitem', ['status', 'next_attempt_at'], unique=False,
                    sqlite_where=sa.text(DUE), postgresql_where=sa.text(DUE))
    op.drop_index('ix_outbox_member_recent', table_name='outboxitem')
    op.drop_index('ix_inbox_kept', table_name='inboxitem')
    op.drop_index('ix_conversation_status', table_name='conversation')
