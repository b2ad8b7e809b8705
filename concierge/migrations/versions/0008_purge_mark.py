"""the retention purge reads only what is new: conversations not purged yet (by when they opened), and the
transcript written since its last run

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every existing conversation starts unmarked: the first purge looks at each idle one once and marks it.
    op.add_column('conversation', sa.Column('purged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_index('ix_conversation_unpurged', 'conversation', ['opened_at'], unique=False,
                    sqlite_where=sa.text('purged_at IS NULL'), postgresql_where=sa.text('purged_at IS NULL'))
    op.create_table('purgemark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('purgemark')
    op.drop_index('ix_conversation_unpurged', table_name='conversation')
    with op.batch_alter_table('conversation') as batch_op:
        batch_op.drop_column('purged_at')
