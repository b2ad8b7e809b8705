"""files: the files of transcript messages, whose bytes are in the file store

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('messagefile',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('mime', sqlmodel.sql.sqltypes.AutoString(length=127), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('messagefile', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messagefile_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messagefile_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messagefile_sha256'), ['sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messagefile', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messagefile_sha256'))
        batch_op.drop_index(batch_op.f('ix_messagefile_message_id'))
        batch_op.drop_index(batch_op.f('ix_messagefile_conversation_id'))
    op.drop_table('messagefile')
