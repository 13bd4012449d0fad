# Per-company sync settings and their history (maestrano_sync.models.settings), and the tombstones of
# Connec! records first seen deleted (maestrano_sync.models.live.RemoteTombstone).

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('maestrano_accounts', '0001_initial'),
        ('maestrano_sync', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CompanySyncSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('enabled', models.BooleanField(default=True, help_text='Off: nothing pushed or applied')),
                ('directions', models.JSONField(blank=True, default=dict, help_text='{entity: "both" | "import" | "export" | "off"}')),
                ('import_since', models.DateField(blank=True, help_text='Import only Connec! records changed since this day', null=True)),
                ('pending_import', models.JSONField(blank=True, default=list, help_text='Entities to import again (their import was switched on)')),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('company', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='maestrano_accounts.company')),
            ],
            options={
                'verbose_name': 'company sync settings',
                'verbose_name_plural': 'company sync settings',
            },
        ),
        migrations.CreateModel(
            name='SyncSettingsChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('changed_by_name', models.CharField(blank=True, default='', help_text='Kept when the user is deleted', max_length=255)),
                ('changed_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('changes', models.JSONField(default=dict)),
                ('changed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='maestrano_accounts.company')),
            ],
            options={
                'ordering': ['-changed_at', '-pk'],
                'indexes': [models.Index(fields=['company', 'changed_at'], name='sync_settings_change')],
            },
        ),
        migrations.CreateModel(
            name='RemoteTombstone',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('entity', models.CharField(max_length=64)),
                ('connec_id', models.CharField(max_length=64)),
                ('updated_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('company', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='maestrano_accounts.company')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('company', 'entity', 'connec_id'), name='sync_tombstone_unique')],
            },
        ),
    ]
