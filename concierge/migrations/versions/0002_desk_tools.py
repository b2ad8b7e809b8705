"""desk tools

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('snippet',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalation_level', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('rating', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rating_comment', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False, server_default=''))

    with op.batch_alter_table('expert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('work_start', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('work_end', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('work_days', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default='mon,tue,wed,thu,fri,sat,sun'))

    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blocked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_column('blocked_until')

    with op.batch_alter_table('expert', schema=None) as batch_op:
        batch_op.drop_column('work_days')
        batch_op.drop_column('work_end')
        batch_op.drop_column('work_start')

    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_column('rating_comment')
        batch_op.drop_column('rating')
        batch_op.drop_column('escalation_level')

    op.drop_table('snippet')
