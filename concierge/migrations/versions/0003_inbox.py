"""inbox: inbound events recorded before they are acknowledged, retried from the database;
members' names from the platform; who closed a conversation (the live card)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inboxitem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('written_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('handled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('member_told', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'event_id', name='uq_inbox_event')
    )
    with op.batch_alter_table('inboxitem', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_due', ['status', 'next_attempt_at'], unique=False,
                              sqlite_where=sa.text("status IN ('pending', 'processing')"),
                              postgresql_where=sa.text("status IN ('pending', 'processing')"))
        batch_op.create_index('ix_inbox_place', ['platform', 'place', 'written_at'], unique=False)
    # What was handled before keeps its identity: a redelivery of an old event stays a no-op.
    op.execute(
        "INSERT INTO inboxitem (platform, event_id, kind, place, payload, status, attempts, next_attempt_at, "
        "last_error, received_at, handled_at, member_told) "
        "SELECT platform, event_id, 'unknown', '', '{}', 'done', 0, received_at, '', received_at, received_at, "
        "false FROM inboundevent"
    )
    op.drop_table('inboundevent')
    with op.batch_alter_table('outboxitem', schema=None) as batch_op:
        batch_op.add_column(sa.Column('maybe_sent', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='admin'))
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_column('closed_by')
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_column('name_source')
    with op.batch_alter_table('outboxitem', schema=None) as batch_op:
        batch_op.drop_column('maybe_sent')
    op.create_table('inboundevent',
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'event_id')
    )
    op.execute("INSERT INTO inboundevent (platform, event_id, received_at) "
               "SELECT platform, event_id, received_at FROM inboxitem")
    with op.batch_alter_table('inboxitem', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_place')
        batch_op.drop_index('ix_inbox_due')
    op.drop_table('inboxitem')
