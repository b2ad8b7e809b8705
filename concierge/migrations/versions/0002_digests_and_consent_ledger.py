"""digests and consent ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0002'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('digest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('cadence', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('next_edition_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    op.create_table('digestedition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('published_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['digest_id'], ['digest.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest_id', 'number', name='uq_edition_number')
    )
    op.create_table('consentevent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('digest_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('how', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('policy_version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['digest_id'], ['digest.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consentevent', schema=None) as batch_op:
        batch_op.create_index('ix_consent_member_digest_at', ['member_id', 'digest_id', 'at'], unique=False)

    op.create_table('digestitem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest_id', sa.Integer(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('edition_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['digest_id'], ['digest.id'], ),
    sa.ForeignKeyConstraint(['edition_id'], ['digestedition.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('digestitem', schema=None) as batch_op:
        batch_op.create_index('ix_digestitem_pending', ['digest_id', 'edition_id'], unique=False)

    op.create_table('subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('digest_id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('cadence', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('day_of_month', sa.Integer(), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('time_zone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('quiet_start', sa.Integer(), nullable=True),
    sa.Column('quiet_end', sa.Integer(), nullable=True),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('next_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_edition_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['digest_id'], ['digest.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('member_id', 'digest_id', name='uq_subscription_member_digest')
    )
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.create_index('ix_subscription_due', ['active', 'next_due_at'], unique=False)

    with op.batch_alter_table('outboxitem', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('digest_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('edition_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('consent_checked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_outbox_member', ['member_id', 'created_at'], unique=False)
        batch_op.create_foreign_key('fk_outboxitem_edition_id', 'digestedition', ['edition_id'], ['id'])
        batch_op.create_foreign_key('fk_outboxitem_member_id', 'member', ['member_id'], ['id'])
        batch_op.create_foreign_key('fk_outboxitem_digest_id', 'digest', ['digest_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('outboxitem', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outboxitem_edition_id', type_='foreignkey')
        batch_op.drop_constraint('fk_outboxitem_member_id', type_='foreignkey')
        batch_op.drop_constraint('fk_outboxitem_digest_id', type_='foreignkey')
        batch_op.drop_index('ix_outbox_member')
        batch_op.drop_column('consent_checked_at')
        batch_op.drop_column('edition_id')
        batch_op.drop_column('digest_id')
        batch_op.drop_column('member_id')

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index('ix_subscription_due')

    op.drop_table('subscription')
    with op.batch_alter_table('digestitem', schema=None) as batch_op:
        batch_op.drop_index('ix_digestitem_pending')

    op.drop_table('digestitem')
    with op.batch_alter_table('consentevent', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_member_digest_at')

    op.drop_table('consentevent')
    op.drop_table('digestedition')
    op.drop_table('digest')
